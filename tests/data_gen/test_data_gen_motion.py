"""data_gen: motion synthesiser and rasteriser on real Live-Sketch sketches and the shipped set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_gen.build import SHIPPED_SKETCHES
from data_gen.motion import PROGRAMS, animate, curve_samples, program_for_caption
from data_gen.raster import make_renderer, render_clip
from data_gen.svg_io import parse_svg_bytes, read_svg_file

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "live_sketch_svg"
SHIPPED = sorted(SHIPPED_SKETCHES.glob("*.svg"))


def _shared_files() -> list[Path]:
    return sorted(SHARED.glob("*.svg")) if SHARED.is_dir() else []


def _check_clip(clip: np.ndarray, frames: int, size: int) -> None:
    assert clip.dtype == np.uint8 and clip.shape == (frames, size, size)
    ink = (clip < 128).mean(axis=(1, 2))
    assert (ink > 0.002).all(), "a frame is blank"
    assert (clip.reshape(frames, -1).max(1) == 255).all(), "background is not white"
    border = np.concatenate([clip[:, 0], clip[:, -1], clip[:, :, 0], clip[:, :, -1]], axis=1)
    assert (border == 255).all(), "a stroke touches the canvas edge"


def test_shipped_sketch_set_is_complete():
    captions = json.loads((SHIPPED_SKETCHES / "captions.json").read_text())
    assert len(SHIPPED) >= 20
    assert {p.stem for p in SHIPPED} == set(captions)
    for path in SHIPPED:
        sk = read_svg_file(path)
        assert 2 <= len(sk.spans) <= 30
        assert ((sk.points >= 0) & (sk.points <= 1)).all()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_sketch_animates_and_rasterises(path):
    caption = json.loads((SHIPPED_SKETCHES / "captions.json").read_text())[path.stem]
    sk = read_svg_file(path)
    program = program_for_caption(caption)
    clip = render_clip(sk, animate(sk, program, 24, seed=1), make_renderer("cairo", 96))
    _check_clip(clip, 24, 96)
    assert len({f.tobytes() for f in clip}) > 4, f"{path.stem} ({program}) barely moves"


def test_every_live_sketch_svg_animates_and_rasterises():
    files = _shared_files()
    if not files:
        pytest.skip(f"shared Live-Sketch sketches not found at {SHARED}")
    captions = json.loads((SHARED / "captions.json").read_text())
    render = make_renderer("cairo", 128)
    for path in files:
        sk = read_svg_file(path)
        caption = captions.get(path.name, captions.get(path.stem, ""))
        clip = render_clip(sk, animate(sk, program_for_caption(caption), 24, seed=7), render)
        _check_clip(clip, 24, 128)


def test_every_program_keeps_strokes_on_canvas():
    sketches = [read_svg_file(p) for p in SHIPPED + _shared_files()[:6]]
    # a sketch that starts out partly off its own canvas is zoomed back in
    sketches.append(
        parse_svg_bytes(
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 256 256">'
            b'<path d="M-40 128 C 60 -30 200 300 300 120" stroke="black"/></svg>'
        )
    )
    for sk in sketches:
        for program in PROGRAMS:
            frames = animate(sk, program, 24, seed=3)
            pts = curve_samples(frames, sk.spans)
            margin = sk.widths.max() / 2
            assert pts.min() >= margin - 1e-9 and pts.max() <= 1 - margin + 1e-9, program


def test_motion_is_smooth_and_loops_from_the_rest_pose():
    sk = read_svg_file(SHIPPED_SKETCHES / "fish.svg")
    for program in PROGRAMS:
        frames = animate(sk, program, 24, seed=5)
        step = np.abs(np.diff(frames, axis=0)).max()
        jerk = np.abs(np.diff(frames, n=2, axis=0)).max()
        assert step < 0.15, f"{program}: jumps {step:.3f} of the canvas between frames"
        assert jerk < 0.08, f"{program}: not smooth ({jerk:.3f})"
        if program not in ("grow", "bloom"):
            wrap = np.abs(frames[0] - frames[-1]).max()
            assert wrap <= 1.5 * step + 1e-9, f"{program}: does not loop"
    rest = animate(sk, "walk", 24, seed=5)[0]
    offset = rest - sk.points  # frame 0 is the input up to the constant fit-to-canvas zoom
    assert np.ptp(offset, axis=0).max() < 0.05


def test_same_seed_same_bytes_other_seed_differs():
    sk = read_svg_file(SHIPPED_SKETCHES / "horse.svg")
    render = make_renderer("cairo", 64)
    a = render_clip(sk, animate(sk, "gallop", 12, seed=11), render)
    b = render_clip(sk, animate(sk, "gallop", 12, seed=11), make_renderer("cairo", 64))
    c = render_clip(sk, animate(sk, "gallop", 12, seed=12), render)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_cairo_and_cairosvg_renderers_agree():
    sk = read_svg_file(SHIPPED_SKETCHES / "butterfly.svg")
    fast = make_renderer("cairo", 128)(sk)
    ref = make_renderer("cairosvg", 128)(sk)
    assert fast.shape == ref.shape == (128, 128) and ref.dtype == np.uint8
    assert np.abs(fast.astype(int) - ref).mean() < 1.0
    stroke = make_renderer("cairo", 128, stroke_width=6.0)(sk)
    assert (stroke < 128).sum() > 1.5 * (fast < 128).sum()


@pytest.mark.parametrize(
    "caption, program",
    [
        ("a fish swimming in the water", "swim"),
        ("A butterfly fluttering its wings and flying gracefully.", "fly"),
        ("A waving flag fluttering and rippling in the wind.", "wave"),
        ("A gazelle galloping and jumping to escape predators.", "gallop"),
        ("a tree swaying in the wind", "sway"),
        ("the sun spinning", "spin"),
        ("a seedling growing from the soil", "grow"),
        ("The goldenfish is gracefully moving", "swim"),
        ("a many-sided thing", "float"),
    ],
)
def test_program_from_caption(caption, program):
    assert program_for_caption(caption) == program
