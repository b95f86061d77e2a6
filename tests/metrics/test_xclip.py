"""X-CLIP T2V (the paper's text-to-video score) on a tiny random X-CLIP saved to a folder and loaded
through the path users take; missing weights are one line saying where to put them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flipsketch.errors import MissingWeightsError
from flipsketch.metrics import XClipScorer
from flipsketch.metrics.policy import sample_indices


def clip(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.full((n, 48, 48), 255, np.uint8)
    for t in range(n):
        frames[t, 10:38, 5 + t : 9 + t] = 0
        frames[t][rng.random((48, 48)) < 0.02] = 0
    return frames


@pytest.fixture(scope="module")
def xclip(tiny_xclip_dir) -> XClipScorer:
    return XClipScorer(tiny_xclip_dir)


def test_loads_from_a_folder_and_is_named(xclip, tiny_xclip_dir):
    assert xclip.backbone == f"xclip:{tiny_xclip_dir.name}" and xclip.num_frames == 8
    assert (tiny_xclip_dir / "model.safetensors").is_file()
    assert XClipScorer.tiny(seed=0).backbone == "xclip:tiny-random(seed=0)"


def test_score_is_the_cosine_behind_xclips_logits(xclip):
    frames = clip(8)
    got = xclip.t2v("a pencil line moving right", frames)
    rgb = [np.repeat(f[..., None], 3, axis=-1) for f in frames]
    inputs = xclip.processor(
        text=["a pencil line moving right"], videos=[rgb], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        out = xclip.model(**inputs)
    want = float(out.logits_per_video[0, 0] / xclip.model.logit_scale.detach().exp())
    assert -1.0 <= got <= 1.0 and got == pytest.approx(want, abs=1e-5)
    assert xclip.t2v("a pencil line moving right", frames) == got  # deterministic
    assert xclip.t2v("a red balloon", frames) != pytest.approx(got, abs=1e-6)  # the text matters


def test_frames_are_sampled_evenly_to_the_models_count(xclip):
    assert list(sample_indices(14, 8)) == [0, 2, 4, 6, 7, 9, 11, 13]
    assert list(sample_indices(3, 8)) == [0, 0, 1, 1, 1, 1, 2, 2]  # short clips repeat frames
    long = clip(14)
    assert xclip.t2v("a cat", long) == pytest.approx(
        xclip.t2v("a cat", long[sample_indices(14, 8)]), abs=1e-6
    )
    assert xclip.t2v("a cat", long, skip_first=True) == pytest.approx(xclip.t2v("a cat", long[1:]), abs=1e-6)
    rgb = np.repeat(long[..., None], 3, axis=-1)  # channels-last RGB scores like its grey twin
    assert xclip.t2v("a cat", rgb) == pytest.approx(xclip.t2v("a cat", long), abs=1e-6)


def test_missing_weights_say_where_to_put_them(tmp_path):
    with pytest.raises(MissingWeightsError, match="X-CLIP folder not found") as e:
        XClipScorer(tmp_path / "nowhere")
    assert "\n" not in str(e.value) and "config.json" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingWeightsError, match="lacks config.json"):
        XClipScorer(tmp_path / "empty")
    with pytest.raises(MissingWeightsError, match="not in the Hugging Face cache") as e:
        XClipScorer("microsoft/xclip-base-patch32", cache_dir=str(tmp_path / "hub"))
    assert str(tmp_path / "hub") in str(e.value) and "huggingface-cli download" in str(e.value)
