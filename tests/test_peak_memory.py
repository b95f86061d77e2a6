"""The benchmark scripts' memory probe sees an allocation made inside its block, also one freed
before the block ends, and each block's peak is its own (not an earlier block's)."""

import sys

import numpy as np
import pytest

from flipsketch.peak_memory import PeakMemory, rss_bytes

MIB = 2**20


def test_peak_rss_growth_covers_an_allocation_inside_the_block():
    with PeakMemory() as m:
        block = np.ones(64 * MIB, dtype=np.uint8)  # 64 MiB, touched, alive at exit
        assert rss_bytes() >= m.base
    assert m.growth >= 48 * MIB and m.peak == m.base + m.growth
    del block


def test_a_freed_allocation_still_counts_and_each_block_has_its_own_peak():
    with PeakMemory() as big:
        block = np.ones(256 * MIB, dtype=np.uint8)
        del block  # gone before the block ends: only the kernel's high-water mark saw it
    assert big.growth >= 200 * MIB
    if not sys.platform.startswith("linux"):
        pytest.skip("the high-water mark restarts per block on Linux only")
    with PeakMemory() as small:
        block = np.ones(32 * MIB, dtype=np.uint8)
        del block
    assert small.since_entry and 24 * MIB <= small.growth < 128 * MIB
