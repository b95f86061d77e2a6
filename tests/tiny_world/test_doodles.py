"""The doodle base domain and the identity / ink metrics the tiny world is judged by."""

from __future__ import annotations

import numpy as np
import torch

from flipsketch.metrics.stroke_metrics import (
    chamfer_distance,
    ink_ratio,
    motion_magnitude,
    nearest_sketch,
    stroke_mask,
)
from flipsketch.tiny_world import doodles


def test_doodle_clips_are_deterministic_line_drawings_that_move():
    a, cap_a = doodles.render_doodle_clip(3)
    b, cap_b = doodles.render_doodle_clip(3)
    assert torch.equal(a, b) and cap_a == cap_b
    assert a.shape == (8, 64, 64) and float(a.min()) >= 0 and float(a.max()) <= 1
    frames = (a.numpy() * 255).astype(np.uint8)
    masks = stroke_mask(frames)
    ink = masks.reshape(8, -1).mean(1)
    assert (ink > 0.005).all() and (ink < 0.25).all(), "thin strokes on white paper, never a filled blob"
    assert motion_magnitude(frames) > 0.05, "the drawing moves"
    # the same strokes in every frame: each frame is far nearer to frame 0 than to another doodle's
    other = (doodles.render_doodle_clip(4)[0].numpy() * 255).astype(np.uint8)
    d_self = np.mean([chamfer_distance(masks[0], m) for m in masks[1:]])
    d_other = chamfer_distance(masks[0], stroke_mask(other[0]))
    assert d_self < d_other


def test_doodle_captions_name_a_motion_that_data_gen_understands():
    from data_gen.motion import program_for_caption

    for program, phrases in doodles.PHRASES.items():
        for phrase in phrases:
            assert program_for_caption(f"a doodle of a thing {phrase}") == program, phrase
    caps = {doodles.render_doodle_clip(s)[1] for s in range(40)}
    assert len(caps) > 30, "varied captions"


def test_doodle_batch_is_vae_ready():
    x, caps = doodles.render_doodle_batch([1, 2], 32, 3)
    assert x.shape == (2, 3, 3, 32, 32) and len(caps) == 2
    assert float(x.min()) >= -1 and float(x.max()) <= 1 and torch.equal(x[:, :, 0], x[:, :, 1])


def test_identity_and_ink_metrics():
    a = np.full((32, 32), 255, np.uint8)
    a[8, 4:28] = 0  # a horizontal line
    b = np.full((32, 32), 255, np.uint8)
    b[4:28, 20] = 0  # a vertical line
    frames = np.stack([a, a, np.roll(a, 1, 0), b])
    assert list(nearest_sketch(frames, [a, b])) == [0, 0, 0, 1]
    assert list(nearest_sketch(frames, [a, b], skip_first=True)) == [0, 0, 1]
    assert ink_ratio(a, frames[:3]) == 1.0
    blob = np.full((32, 32), 255, np.uint8)
    blob[4:20, 4:20] = 0
    assert ink_ratio(a, np.stack([a, blob, blob]), skip_first=True) == 256 / 24


def test_contact_sheet_draws_one_row_per_label(tmp_path):
    from PIL import Image

    from flipsketch.pictures import contact_sheet

    fr = np.full((3, 16, 16), 255, np.uint8)
    fr[:, 8, 2:14] = 0
    path = contact_sheet(
        tmp_path / "s.png", [("cat", [("full", fr), ("plain", fr[:2])]), ("fish", [("full", fr)])]
    )
    with Image.open(path) as im:
        a = np.asarray(im.convert("L"))
    assert im.size[0] >= 150 + 3 * 32 and im.size[1] >= 3 * 32 + 2 * 14
    assert (a[14 + 16, 150:] == 0).any(), "the stroke of the first frame is drawn, scaled x2"
    assert not list(tmp_path.glob("*.tmp*")), "written atomically"


def test_motion_spans_slow_down_only_the_listed_programs():
    """A spin over 24..32 frames moves less per frame than a whole turn in the 8-frame clip (45 degrees a
    frame), and every window is still the same drawing, moved; unlisted programs are unchanged."""
    slower = {"spin": (24, 32), "fly": (16, 24)}
    fast, slow = [], []
    for s in range(6):
        whole, cap = doodles.render_doodle_clip(s, program="spin")  # default: the whole program
        window, cap_w = doodles.render_doodle_clip(s, program="spin", spans=slower)
        assert cap == cap_w and window.shape == whole.shape == (8, 64, 64)
        fast.append(motion_magnitude((whole.numpy() * 255).astype(np.uint8)))
        slow.append(motion_magnitude((window.numpy() * 255).astype(np.uint8)))
        # unlisted program: identical with and without spans
        a, _ = doodles.render_doodle_clip(s, program="sway", spans=slower)
        b, _ = doodles.render_doodle_clip(s, program="sway")
        assert torch.equal(a, b)
    assert np.mean(slow) < 0.7 * np.mean(fast), (np.mean(slow), np.mean(fast))
    assert np.mean(slow) > 0.3, "a slower spin still moves"


def test_motion_span_windows_are_consecutive_frames_of_the_longer_animation(monkeypatch):
    import data_gen.motion
    import data_gen.raster

    calls = {}

    def fake_animate(sketch, program, frames, seed):  # frame k: the drawing shifted by k / 1000
        calls["frames"] = frames
        return sketch.points[None] + (np.arange(frames) / 1000)[:, None, None]

    def fake_render(sketch, pts, renderer):
        calls["k"] = np.rint((pts[:, 0, 0] - sketch.points[0, 0]) * 1000).astype(int)
        return np.full((len(pts), 8, 8), 255, np.uint8)

    monkeypatch.setattr(data_gen.motion, "animate", fake_animate)
    monkeypatch.setattr(data_gen.raster, "render_clip", fake_render)
    for seed in range(4):
        doodles.render_doodle_clip(seed, program="spin", spans={"spin": (24,)})
        k = calls["k"]
        assert calls["frames"] == 24 and len(k) == 8
        assert ((np.diff(k) % 24) == 1).all(), k  # a loop: consecutive frames, wrapping around
        doodles.render_doodle_clip(seed, program="grow", spans={"grow": (24,)})
        k = calls["k"]
        assert (np.diff(k) == 1).all() and 0 <= k[0] and k[-1] < 24, k  # one-shot: inside, no wrap
        doodles.render_doodle_clip(seed, program="spin", spans={})
        assert calls["frames"] == 8 and list(calls["k"]) == list(range(8))


def test_spans_option_is_checked():
    import pytest

    from flipsketch.errors import UserError
    from flipsketch.tiny_world.__main__ import parse_spans

    assert parse_spans(["spin=24,32", "fly=16"]) == {"spin": (24, 32), "fly": (16,)}
    for bad in ("spin=", "spin=a", "twirl=8", "spin=0"):
        with pytest.raises(UserError, match="--spans"):
            parse_spans([bad])


def test_contact_sheet_labels_say_lambda_in_any_font():
    from flipsketch.pictures import drawable, label_font

    assert drawable("FlipSketch λ=1", unicode=False) == "FlipSketch lambda=1"
    assert drawable("FlipSketch λ=1", unicode=True) == "FlipSketch λ=1"
    font, unicode = label_font()
    if unicode:  # a font with Greek letters draws λ, not the missing-glyph box of "?"
        from PIL import Image, ImageDraw

        def ink(text):
            im = Image.new("L", (40, 20), 255)
            ImageDraw.Draw(im).text((2, 2), text, font=font, fill=0)
            return np.asarray(im)

        assert not np.array_equal(ink("λ"), ink("\uffff"))
