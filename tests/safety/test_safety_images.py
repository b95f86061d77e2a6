"""Tiny files that would explode (issue 25, item 4): width, height, area and aspect ratio are read
from the image header and bounded before anything is decoded or a canvas allocated."""

import numpy as np
import pytest
from PIL import Image

from flipsketch import sketch as S
from flipsketch.errors import UserError


def _png(path, w, h):
    Image.new("L", (w, h), 255).save(path, optimize=True)
    return path


def test_a_60000x1_png_is_refused_from_its_header(tmp_path, monkeypatch):
    path = _png(tmp_path / "strip.png", 60000, 1)
    assert path.stat().st_size < 1000  # a tiny file
    monkeypatch.setattr(S, "fit_to_square", lambda *a, **k: pytest.fail("a canvas was built"))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("the image was decoded"))
    with pytest.raises(UserError, match=r"60000x1 pixels; at most 20000 pixels a side"):
        S.load_sketch(path, 64)


@pytest.mark.parametrize(
    ("w", "h", "why"),
    [(5000, 10, "differ by at most 20x"), (10, 5000, "differ by at most 20x"), (20001, 20001, "a side")],
)
def test_sides_and_aspect_are_bounded(tmp_path, w, h, why):
    with pytest.raises(UserError, match=why):
        S.check_image_dims(w, h, "sketch x.png")


def test_area_is_bounded(monkeypatch):
    monkeypatch.setattr(S, "MAX_PIXELS", 100)
    with pytest.raises(UserError, match="megapixels"):
        S.check_image_dims(11, 10, "x")
    S.check_image_dims(10, 10, "x")


def test_a_wide_sketch_never_builds_a_canvas_of_its_long_side(tmp_path, monkeypatch):
    """4000x400 at resolution 32: the image is reduced by its long side first, so the white square
    canvas is a few hundred pixels, not 4000x4000."""
    path = tmp_path / "wide.png"
    a = np.full((400, 4000), 255, np.uint8)
    a[100:300, :] = 0
    Image.fromarray(a).save(path)
    sizes = []
    real_new = Image.new

    def spy(mode, size, *a, **k):
        sizes.append(size)
        return real_new(mode, size, *a, **k)

    monkeypatch.setattr(Image, "new", spy)
    img = S.load_sketch(path, 32)
    assert img.size == (32, 32)
    assert sizes and max(max(s) for s in sizes) <= 4 * 32
    assert np.asarray(img.convert("L")).min() < 128  # the line is still there


def test_pils_own_bomb_guard_is_set_to_our_bound():
    assert Image.MAX_IMAGE_PIXELS == S.MAX_PIXELS


def test_the_animate_cli_refuses_the_strip_in_one_line(tmp_path, capfd):
    from flipsketch.animate import main

    path = _png(tmp_path / "strip.png", 60000, 1)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main([f"sketch={path}", "prompt=x", f"out={out}", "model=tiny", "progress=false"])
    assert exc.value.code == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "60000x1" in err[0]
    assert not out.exists()


def test_frames_read_back_are_bounded_too(tmp_path):
    from flipsketch.baselines.frames_io import read_clip

    folder = tmp_path / "frames"
    folder.mkdir()
    _png(folder / "000.png", 60000, 1)
    with pytest.raises(UserError, match="60000x1"):
        read_clip(folder)


def test_the_apps_drawing_is_bounded_too(tmp_path):
    from flipsketch.app import drawn_sketch

    strip = np.zeros((2, 5000), np.uint8)
    with pytest.raises(UserError, match="the drawing is 5000x2 pixels"):
        drawn_sketch({"composite": strip}, tmp_path)
    assert not (tmp_path / "drawn_sketch.png").exists()
