"""Vector output: frames traced to Bezier paths (flipsketch.vector) and output.formats=[..., svg]."""

import numpy as np
import pytest
from defusedxml import ElementTree
from PIL import Image, ImageDraw

from flipsketch.errors import UserError
from flipsketch.ink import ink_mask
from flipsketch.outputs import check_output_config, write_animation
from flipsketch.vector import (
    SVG_MAX_SIDE,
    animated_svg,
    frame_svg,
    iou,
    rasterize_svg,
    trace_frame,
    write_svgs,
)

SVG_NS = "{http://www.w3.org/2000/svg}"


def _frame(size=96, shift=0) -> np.ndarray:
    img = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(img)
    s = size
    d.ellipse((s // 5 + shift, s // 5, 3 * s // 5 + shift, 3 * s // 5), outline=0, width=max(2, s // 24))
    d.line((s // 8, 7 * s // 8, 7 * s // 8, 5 * s // 8 + shift), fill=0, width=max(2, s // 24))
    return np.where(np.asarray(img) < 128, 0, 255).astype(np.uint8)


def test_traced_frame_rasterises_back_to_the_frame():
    f = _frame(96)
    d, view = trace_frame(f)
    assert (
        view == (192, 192) and d.startswith("M") and "C" in d and d.count("Z") >= 3
    )  # ring = 2 curves + line
    back = rasterize_svg(frame_svg(d, view, (96, 96)), (96, 96))
    assert iou(back, f == 0) > 0.95
    # the ink is where it was: not flipped or shifted
    moved = rasterize_svg(frame_svg(trace_frame(_frame(96, shift=20))[0], view, (96, 96)), (96, 96))
    assert iou(moved, f == 0) < 0.6


def test_blank_frame_and_grey_frames():
    blank = np.full((32, 32), 255, np.uint8)
    assert trace_frame(blank)[0] == ""
    svg = frame_svg("", (32, 32), (32, 32))
    assert not rasterize_svg(svg, (32, 32)).any()
    grey = np.stack([np.where(_frame(64) == 0, 40, 220).astype(np.uint8)] * 3, axis=-1)  # binarise off, RGB
    assert np.array_equal(ink_mask(grey), _frame(64) == 0)


def test_large_frames_are_traced_at_a_bounded_size():
    big = np.asarray(Image.fromarray(_frame(96)).resize((SVG_MAX_SIDE * 2,) * 2, Image.Resampling.NEAREST))
    d, view = trace_frame(big)
    assert view == (SVG_MAX_SIDE, SVG_MAX_SIDE)
    back = rasterize_svg(frame_svg(d, view, (96, 96)), (96, 96))  # the viewBox scales it to any size
    assert iou(back, _frame(96) == 0) > 0.8


def test_animated_svg_switches_one_group_per_frame():
    paths = [trace_frame(_frame(64, shift=k * 4))[0] for k in range(3)]
    root = ElementTree.fromstring(animated_svg(paths, (64, 64), (128, 128), fps=10))
    assert root.get("viewBox") == "0 0 64 64" and root.get("width") == "128"
    groups = root.findall(f"{SVG_NS}g")
    assert [g.get("visibility") for g in groups] == ["visible", "hidden", "hidden"]
    for i, g in enumerate(groups):
        anim = g.find(f"{SVG_NS}animate")
        assert anim.get("dur") == "0.3s" and anim.get("calcMode") == "discrete"
        values = anim.get("values").split(";")
        assert values.index("visible") == i and values.count("visible") == 1 and len(values) == 3


def test_write_animation_with_svg(tmp_path):
    frames = np.stack([_frame(64, shift=k * 3) for k in range(4)])
    out = write_animation(tmp_path / "seed0", frames, {"x": 1}, fps=8, formats=("gif", "svg"))
    files = sorted(p.name for p in (out / "svg").iterdir())
    assert files == ["000.svg", "001.svg", "002.svg", "003.svg"] and (out / "animation.svg").is_file()
    assert not (out / "frames").exists() and (out / "animation.gif").is_file()
    for k in range(4):
        back = rasterize_svg((out / "svg" / f"{k:03d}.svg").read_bytes(), (64, 64))
        assert iou(back, frames[k] == 0) > 0.95
    # static viewers (CairoSVG) show frame 0 of the animated file
    assert iou(rasterize_svg((out / "animation.svg").read_bytes(), (64, 64)), frames[0] == 0) > 0.8


def test_paths_returned_match_files(tmp_path):
    frames = np.stack([_frame(48), _frame(48, shift=5)])
    paths = write_svgs(tmp_path, frames, fps=10)
    assert len(paths) == 2 and paths[0] != paths[1]
    assert paths[1] in (tmp_path / "svg" / "001.svg").read_text()


def test_output_config_accepts_svg_and_refuses_unknown():
    assert check_output_config({"formats": ["gif", "svg"]})["formats"] == ["gif", "svg"]
    with pytest.raises(UserError, match="unknown output format"):
        check_output_config({"formats": ["svgz"]})
