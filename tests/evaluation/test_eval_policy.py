"""One scoring policy for every method: identical frames score identically whichever method made
them, the policy's frame count / post-processing / frame 0 apply to all, the old FlipSketch scoring
is reproduced when the policy equals it, and the contact sheet shows the frames as scored."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image, ImageFilter

from flipsketch.baselines import Baseline
from flipsketch.errors import UserError
from flipsketch.evaluation.benchmark import BenchmarkItem
from flipsketch.evaluation.evaluator import METRIC_KEYS, Evaluator
from flipsketch.evaluation.methods import Method
from flipsketch.ink import binarize
from flipsketch.metrics import ClipScorer, ScoringPolicy, XClipScorer, compute_all
from flipsketch.metrics._io import gray_frames
from flipsketch.sketch import load_sketch
from tests.conftest import draw_sketch

SIDE = 32


def raw_clip(n: int = 5) -> np.ndarray:
    """A grey, anti-aliased RGB clip (what a diffusion model hands back): a drifting circle."""
    blurred = draw_sketch(SIDE).convert("L").filter(ImageFilter.GaussianBlur(0.8))  # soft stroke edges
    base = np.asarray(blurred, dtype=np.float32)
    frames = [np.roll(base, t, axis=1) * 0.8 + 40 for t in range(n)]  # grey paper, grey strokes
    return np.repeat(np.stack(frames).clip(0, 255).astype(np.uint8)[..., None], 3, axis=-1)


class Fixed(Baseline):
    """A baseline that hands back a given clip."""

    name = "fixed"

    def __init__(self, frames, **kw):
        super().__init__(**kw)
        self.frames = frames

    def generate(self, image, prompt, num_frames, size, steps, guidance, seed, item=None):
        return self.frames


class Ctx:
    """The parts of EvalContext the evaluator touches; its 'FlipSketch pipeline' returns `frames`."""

    size, dtype, progress = SIDE, "float32", False

    def __init__(self, frames):
        self.frames = frames

    def model_tag(self):
        return "fake"

    def sampler_dict(self):
        return {"num_frames": len(self.frames), "num_inference_steps": 1, "guidance_scale": 1.0}

    def pipeline(self):
        return lambda *a, **k: SimpleNamespace(frames=[self.frames], stats={"seconds": 0.0})


@pytest.fixture(scope="module")
def scorers(tiny_xclip_dir):
    return ClipScorer.tiny(seed=0), XClipScorer(tiny_xclip_dir)


@pytest.fixture
def item(tmp_path):
    p = tmp_path / "circle.png"
    draw_sketch(SIDE).save(p)
    return BenchmarkItem("circle", p, "a circle", p, hashlib.sha256(p.read_bytes()).hexdigest())


def evaluator(tmp_path, item, scorers, methods, frames, policy, xclip=True):
    return Evaluator(
        Ctx(frames),
        methods,
        [item],
        [0],
        scorers[0],
        tmp_path / "samples",
        formats=("png",),
        policy=policy,
        t2v_scorer=scorers[1] if xclip else None,
    )


@pytest.mark.parametrize("postprocess", ["binarize", "grey"])
def test_two_methods_with_identical_frames_score_identically(tmp_path, item, scorers, postprocess):
    frames = raw_clip()
    methods = [  # a FlipSketch variant and an SVD-like baseline (its own count, image-only)
        Method("full", "FlipSketch", "variant", {"a": 1}),
        Method(
            "svd", "SVD", "baseline", {"b": 2}, baseline=Fixed(frames, num_frames=14), text_conditioned=False
        ),
    ]
    policy = ScoringPolicy(postprocess=postprocess, frames=4, include_frame0=False)
    rows = evaluator(tmp_path, item, scorers, methods, frames, policy).run()
    a, b = rows
    assert {k: a[k] for k in (*METRIC_KEYS, "frames_scored", "t2v_scorer")} == {
        k: b[k] for k in (*METRIC_KEYS, "frames_scored", "t2v_scorer")
    }
    assert a["frames_scored"] == 4 and a["frames"] == 5 and a["policy"] == policy.to_dict()
    assert a["t2v_scorer"].startswith("xclip:")
    other = evaluator(tmp_path / "o", item, scorers, methods[:1], frames[::-1].copy(), policy).run()[0]
    assert other["motion"] == pytest.approx(a["motion"]) and other["s2v"] != a["s2v"]  # frames matter


def test_the_policy_decides_frame_count_postprocessing_and_frame0():
    clip = raw_clip(14)
    bw = ScoringPolicy("binarize", frames=10).apply(clip)
    assert bw.shape == (10, SIDE, SIDE) and set(np.unique(bw)) == {0, 255}
    assert np.array_equal(bw, binarize(clip[np.round(np.linspace(0, 13, 10)).astype(int)]))
    grey = ScoringPolicy("grey", frames=None).apply(clip)
    assert np.array_equal(grey, gray_frames(clip)) and len(np.unique(grey)) > 2  # no threshold
    assert ScoringPolicy("binarize", binarize_upscale=2).apply(clip[:2]).shape == (2, 2 * SIDE, 2 * SIDE)
    assert ScoringPolicy(include_frame0=False).skip_first
    text = ScoringPolicy("grey", frames=10, include_frame0=False).describe()
    assert "grey levels" in text and "10 frames" in text and "frame 0 left out" in text
    for bad, needle in (
        (dict(postprocess="blur"), "metrics.postprocess must be one of binarize, grey"),
        (dict(frames=0), "metrics.frames"),
        (dict(frames=1, include_frame0=False), "metrics.frames"),
        (dict(include_frame0="maybe"), "metrics.include_frame0"),
    ):
        with pytest.raises(UserError, match=needle) as e:
            ScoringPolicy(**bad)
        assert "\n" not in str(e.value)
    node = OmegaConf.create({"frames": 10, "postprocess": "grey", "scorer": {}})  # a metrics config node
    assert ScoringPolicy.from_config(node) == ScoringPolicy("grey", frames=10, include_frame0=True)


def test_the_old_flipsketch_scoring_is_reproduced_when_the_policy_equals_it(tmp_path, item, scorers):
    """Before the policy: FlipSketch frames binarised at generation, every frame scored, CLIP T2V."""
    frames = raw_clip(4)
    policy = ScoringPolicy("binarize", frames=4, include_frame0=True)
    row = evaluator(
        tmp_path, item, scorers, [Method("full", "FlipSketch", "variant", {})], frames, policy, xclip=False
    ).run()[0]
    bw = binarize(frames)
    old = compute_all(scorers[0], load_sketch(item.sketch, SIDE), item.prompt, bw, skip_first=False)
    assert {k: row[k] for k in METRIC_KEYS} == {k: old[k] for k in METRIC_KEYS}
    assert row["t2v_scorer"] == "open_clip:tiny-random(seed=0) per-frame"


def test_the_contact_sheet_shows_the_sketch_then_the_frames_as_scored(tmp_path, item, scorers):
    frames = raw_clip(6)
    methods = [
        Method("full", "FlipSketch", "variant", {}),
        Method("svd", "SVD", "baseline", {}, baseline=Fixed(frames[:3])),
    ]
    ev = evaluator(tmp_path, item, scorers, methods, frames, ScoringPolicy("binarize", frames=4))
    ev.run()
    sheets = ev.contact_sheets(tmp_path / "sheets")
    sheet = np.asarray(Image.open(sheets["circle"]).convert("L"))
    side, scale = 128, 4  # 32 px frames drawn at 4x
    assert sheet.shape == (14 + 2 * (side + 2), 150 + 5 * (side + 2))
    scored = ev.scored_frames(frames[:3])  # the SVD row: 3 frames resampled to 4, binarised
    for k in range(4):
        x0, y0 = 150 + (k + 1) * (side + 2), 14 + (side + 2)
        cell = sheet[y0 : y0 + side, x0 : x0 + side]
        assert np.array_equal(cell[::scale, ::scale], scored[k]), k
    sketch = np.asarray(load_sketch(item.sketch, SIDE).convert("L"))
    assert np.array_equal(
        sheet[14 : 14 + side : scale, 150 : 150 + side : scale][1:-1, 1:-1], sketch[1:-1, 1:-1]
    )
