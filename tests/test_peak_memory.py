"""The benchmark scripts' memory probe sees an allocation made inside its block."""

import numpy as np

from flipsketch.peak_memory import PeakMemory, rss_bytes


def test_peak_rss_growth_covers_an_allocation_inside_the_block():
    with PeakMemory() as m:
        block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MiB, touched, alive at exit
        assert rss_bytes() >= m.base
    assert m.growth >= 48 * 2**20 and m.peak == m.base + m.growth
    del block
