"""Baselines on generated inputs: frame reading, the external-program adapter (folder and command
modes, no shell), Live-Sketch SVG folders, and the shared output contract (uint8 (F, size, size, 3))."""

import sys

import numpy as np
import pytest
from PIL import Image

from data_gen.svg_io import read_svg_file, to_svg
from flipsketch.baselines import build_baseline, fit_frames, read_clip
from flipsketch.errors import UserError
from tests.conftest import REPO, draw_sketch


class Item:
    def __init__(self, id):
        self.id = id


def test_fit_frames_makes_square_uint8_rgb():
    gray = np.full((3, 20, 40), 200, np.uint8)  # non-square gray
    out = fit_frames(gray, 16)
    assert out.shape == (3, 16, 16, 3) and out.dtype == np.uint8
    assert out[:, 0, 8].min() == 255  # letterboxed on white, nothing cropped
    rgba = np.zeros((2, 8, 8, 4), np.uint8)  # fully transparent -> white
    assert fit_frames(rgba, 8).min() == 255
    floats = np.full((2, 8, 8, 3), 0.5, np.float32)
    assert fit_frames(floats, 8)[0, 0, 0, 0] == 128


def _gif(path, n=3, size=24):
    imgs = [Image.new("RGB", (size, size), (40 * i, 40 * i, 40 * i)) for i in range(n)]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=100, loop=0)


def test_read_clip_from_frames_gif_and_a_folder_with_one_video(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in (10, 2, 1):  # natural order: 1, 2, 10
        Image.new("L", (8, 8), i).save(frames / f"f{i}.png")
    assert [int(f[0, 0, 0]) for f in read_clip(frames)] == [1, 2, 10]
    _gif(tmp_path / "a.gif", n=4)
    assert read_clip(tmp_path / "a.gif").shape == (4, 24, 24, 3)
    nested = tmp_path / "nested" / "samples"
    nested.mkdir(parents=True)
    _gif(nested / "video.gif", n=2)
    assert read_clip(tmp_path / "nested").shape[0] == 2
    with pytest.raises(UserError, match="no frame images or video"):
        read_clip(_empty(tmp_path))


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_external_folder_mode_finds_outputs_per_item_and_seed(tmp_path):
    out = tmp_path / "dc"
    (out / "cat" / "seed1").mkdir(parents=True)
    _gif(out / "cat" / "seed1" / "v.gif", n=5)
    _gif(out / "dog.gif", n=3)
    (out / "fish_files").mkdir()
    _gif(out / "fish_files" / "clip.gif", n=2)
    b = build_baseline("dynamicrafter", outputs=str(out), names={"fish": "fish_files"})
    assert b.label == "DynamiCrafter" and b.text_conditioned
    kw = dict(num_frames=16, size=32, steps=50, guidance=7.5)
    assert b.generate(None, "p", seed=1, item=Item("cat"), **kw).shape == (5, 32, 32, 3)
    assert b.generate(None, "p", seed=0, item=Item("dog"), **kw).shape == (3, 32, 32, 3)
    assert b.generate(None, "p", seed=0, item=Item("fish"), **kw).shape == (2, 32, 32, 3)
    with pytest.raises(UserError, match="no output for item 'cow'"):
        b.generate(None, "p", seed=0, item=Item("cow"), **kw)


WRITER = """
import sys
from pathlib import Path
from PIL import Image
image, out, seed, n, prompt = sys.argv[1:6]
assert Image.open(image).size == (40, 40)
for i in range(int(n)):
    Image.new("L", (20, 20), (len(prompt) + i) % 256).save(Path(out) / f"{i:03d}.png")
"""


def test_external_command_mode_runs_without_a_shell(tmp_path):
    b = build_baseline(
        "external",
        command=[sys.executable, "-c", WRITER, "{image}", "{out}", "{seed}", "{num_frames}", "{prompt}"],
        label="Writer",
        input_size=40,
    )
    prompt = "a cat; rm -rf / {out} $(echo hi)"  # passed as one literal argument
    frames = b.generate(
        draw_sketch(40), prompt, num_frames=3, size=24, steps=1, guidance=1.0, seed=0, item=Item("x")
    )
    assert frames.shape == (3, 24, 24, 3)
    assert [int(f[0, 0, 0]) for f in frames] == [len(prompt), len(prompt) + 1, len(prompt) + 2]


def test_external_command_errors_are_one_line(tmp_path):
    kw = dict(num_frames=2, size=16, steps=1, guidance=1.0, seed=0, item=Item("x"))
    failing = build_baseline(
        "external", command=[sys.executable, "-c", "import sys; sys.exit('model not found')"]
    )
    with pytest.raises(UserError, match="exited with 1.*model not found"):
        failing.generate(draw_sketch(16), "p", **kw)
    with pytest.raises(UserError, match="program not found"):
        build_baseline("external", command=["/nonexistent/program"]).generate(draw_sketch(16), "p", **kw)
    with pytest.raises(UserError, match="unknown placeholder"):
        build_baseline("external", command=["x", "{imagee}"])
    with pytest.raises(UserError, match="exactly one of"):
        build_baseline("dynamicrafter")
    with pytest.raises(UserError, match="outputs folder not found"):
        build_baseline("dynamicrafter", outputs=str(tmp_path / "missing"))
    with pytest.raises(UserError, match="unknown baseline"):
        build_baseline("sora")


def _write_svg_frames(folder, n=4, dx=0.02):
    sketch = read_svg_file(REPO / "data_gen" / "sketches" / "fish.svg")
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"frame{i:03d}.svg").write_text(to_svg(sketch.with_points(sketch.points + [dx * i, 0.0])))


def test_live_sketch_rasterises_svg_frame_folders(tmp_path):
    root = tmp_path / "ls"
    _write_svg_frames(root / "fish", n=4)
    _write_svg_frames(root / "run_b" / "svg_logs" / "svg_step100", n=3)  # a Live-Sketch run folder
    b = build_baseline("live_sketch", outputs=str(root), names={"cat": "run_b"})
    kw = dict(num_frames=10, size=48, steps=1, guidance=1.0, seed=0)
    frames = b.generate(None, "a fish swimming", item=Item("fish"), **kw)
    assert frames.shape == (4, 48, 48, 3) and frames.dtype == np.uint8
    assert frames.min() < 128 and frames.max() == 255  # dark strokes on white
    assert not np.array_equal(frames[0], frames[-1])  # the strokes move
    assert b.generate(None, "x", item=Item("cat"), **kw).shape[0] == 3
    resampled = build_baseline("live_sketch", outputs=str(root), num_frames=7)
    assert resampled.generate(None, "x", item=Item("fish"), **kw).shape[0] == 7
    with pytest.raises(UserError, match="no SVG frames for item 'dog'"):
        b.generate(None, "x", item=Item("dog"), **kw)
    with pytest.raises(UserError, match="set baseline.live_sketch.outputs"):
        build_baseline("live_sketch")
