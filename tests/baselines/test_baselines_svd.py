"""The SVD baseline on tiny random components of the real diffusers classes, and from a saved folder."""

import numpy as np
import pytest
import torch

from flipsketch.baselines import build_baseline
from flipsketch.baselines.svd_tiny import build_tiny_svd
from flipsketch.errors import MissingWeightsError
from tests.conftest import draw_sketch

KW = dict(num_frames=3, size=48, steps=2, guidance=2.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops stall on a busy 2-core machine with 2 threads
    yield
    torch.set_num_threads(before)


def test_svd_from_a_local_folder_is_seeded_and_returns_eval_size_frames(tmp_path):
    folder = tmp_path / "svd"
    build_tiny_svd(seed=0).save_pretrained(folder)
    b = build_baseline("svd", path=str(folder), resolution=32)
    assert b.label == "SVD" and not b.text_conditioned
    b.setup(None)
    a = b.generate(draw_sketch(64), None, seed=0, **KW)
    assert a.shape == (3, 48, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b.generate(draw_sketch(64), None, seed=0, **KW))
    assert not np.array_equal(a, b.generate(draw_sketch(64), None, seed=1, **KW))


def test_missing_svd_weights_are_one_line(tmp_path):
    with pytest.raises(MissingWeightsError, match="no weights at") as e:
        build_baseline("svd", path=str(tmp_path / "nowhere"))
    assert "\n" not in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingWeightsError, match="no model_index.json"):
        build_baseline("svd", path=str(tmp_path / "empty"))
    with pytest.raises(MissingWeightsError, match="set baseline.svd.path"):
        build_baseline("svd", path=None)
