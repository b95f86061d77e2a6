"""flipsketch-app's request handling without a browser: flipsketch-animate's checks as one-line
messages, the model loaded once, the outputs a page shows (GIF, MP4, SVG, frames)."""

import numpy as np
import pytest

from flipsketch.app import FlipSketchApp, drawn_sketch, parse_seeds, split_app_args
from flipsketch.errors import UserError

FAST = dict(lambda_=0.5, steps=2, frames=3, align=False, seeds="0", model="tiny")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return FlipSketchApp(["device=cpu", "model=tiny"], tmp_path_factory.mktemp("results"), keep=3)


def run(app, upload=None, drawing=None, source="upload", prompt="a ball bouncing", **kw):
    args = {**FAST, **kw}
    return app.run(upload, drawing, source, prompt, *(args[k] for k in FAST))


def test_animation_and_model_loaded_once(app, sketch_png):
    status, gif, mp4, svg, gallery, files = run(app, str(sketch_png), seeds="0, 3")
    assert status.startswith("Done in"), status
    assert gif.endswith("seed0/animation.gif") and mp4.endswith("seed0/animation.mp4")
    assert svg.count("<g id=") == 3 and "<animate" in svg
    assert [label for _, label in gallery] == [f"seed{s} frame {i}" for s in (0, 3) for i in range(3)]
    assert sorted(p.rsplit("/", 2)[-2] for p in files) == ["seed0"] * 3 + ["seed3"] * 3
    comps = app.models.components
    status2 = run(app, str(sketch_png), prompt="a ball rolling")[0]
    assert status2.startswith("Done in") and app.models.components is comps  # not reloaded


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"seeds": "one"}, "seeds must be whole numbers"),
        ({"seeds": "0, 0"}, "seeds lists a seed twice"),
        ({"seeds": "-1"}, "seeds must be a non-empty list of non-negative integers"),
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"upload": None}, "no sketch: upload an image"),
    ],
)
def test_bad_input_is_one_line(app, sketch_png, kw, message):
    kw = {"upload": str(sketch_png), **kw}
    status, gif, mp4, svg, gallery, files = run(app, **kw)
    assert status.startswith("**Error:**") and message in status and "\n" not in status
    assert (gif, mp4, svg, gallery, files) == (None, None, "", [], [])


def test_bad_upload_is_one_line(app, tmp_path):
    bad = tmp_path / "cat.png"
    bad.write_bytes(b"this is not a PNG")
    status = run(app, str(bad))[0]
    assert status.startswith("**Error:**") and "Traceback" not in status and "\n" not in status
    assert "cannot read sketch cat.png" in status and str(tmp_path) not in status


def test_drawing(app, tmp_path):
    canvas = np.zeros((128, 128, 4), np.uint8)  # the Sketchpad: transparent where nothing is drawn
    with pytest.raises(UserError, match="nothing drawn"):
        drawn_sketch({"composite": canvas}, tmp_path)
    assert run(app, drawing={"composite": canvas}, source="draw")[0].startswith("**Error:** nothing drawn")
    canvas[30:100, 60:66] = (0, 0, 0, 255)
    path = drawn_sketch({"composite": canvas}, tmp_path)
    from PIL import Image

    img = np.asarray(Image.open(path))
    assert img.shape == (128, 128, 3) and img[50, 62].max() == 0 and img[5, 5].min() == 255  # ink on white
    assert run(app, drawing={"composite": canvas}, source="draw")[0].startswith("Done in")


def test_old_runs_are_removed(app, sketch_png):
    for _ in range(2):
        run(app, str(sketch_png))
    assert len([p for p in app.results.iterdir() if p.name.startswith("run-")]) <= 3


def test_app_settings():
    settings, rest = split_app_args(["port=8000", "model=tiny", "sampler.lambda_=0.3"])
    assert settings["port"] == 8000 and rest == ["model=tiny", "sampler.lambda_=0.3", "device=cpu"]
    assert split_app_args(["device=cuda"])[1] == ["device=cuda"]
    with pytest.raises(UserError, match="port"):
        split_app_args(["port=http"])
    assert parse_seeds("1, 2 5") == [1, 2, 5]
    with pytest.raises(UserError, match="at most"):
        parse_seeds("1 2 3 4 5")


def test_command_line_typos_fail_at_start(tmp_path):
    with pytest.raises(UserError, match="did you mean sampler.lambda_"):
        FlipSketchApp(["sampler.lamda_=0.3"], tmp_path)


def test_upload_preview_shows_images_only(sketch_png, tmp_path):
    from flipsketch.app import preview_upload

    assert preview_upload(str(sketch_png)) == str(sketch_png)
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert preview_upload(str(bad)) is None and preview_upload(None) is None


def test_an_svg_upload_is_animated_and_previewed(app, tmp_path):
    """SVG sketches (data_gen's, the benchmarks') are read by the same safe rasteriser as data_gen;
    an unsafe one is one line; the upload's preview is the rasterised drawing."""
    from pathlib import Path

    from PIL import Image

    from flipsketch.app import preview_upload

    svg = Path(__file__).resolve().parents[1] / "data_gen" / "sketches" / "fish.svg"
    upload = tmp_path / "fish.svg"
    upload.write_bytes(svg.read_bytes())
    status = run(app, str(upload))[0]
    assert status.startswith("Done in"), status
    preview = preview_upload(str(upload))
    assert preview and preview.endswith(".png") and Image.open(preview).size == (256, 256)
    bad = tmp_path / "evil.svg"
    bad.write_text('<svg xmlns="http://www.w3.org/2000/svg"><image href="http://example.com/x.png"/></svg>')
    status = run(app, str(bad))[0]
    assert status.startswith("**Error:**") and "cannot read sketch evil.svg as an SVG" in status, status
    assert "not allowed" in status and "\n" not in status


@pytest.mark.slow  # a fast-suite test covers the same path more cheaply; `make test-all` runs it
def test_the_run_reports_progress_through_every_step(app, sketch_png):
    seen = []
    status = app.run(str(sketch_png), None, "upload", "a ball", 0.5, 3, 3, True, "0, 1", "tiny",
                     progress=lambda f, desc=None: seen.append((f, desc)))  # fmt: skip
    assert status[0].startswith("Done in"), status[0]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == pytest.approx(1.0)
    labels = [d for _, d in seen]
    assert labels[0].startswith("loading")
    for seed in (0, 1):
        assert any(d.startswith(f"seed {seed}: step 3/3") for d in labels), labels
    assert any("aligning" in d for d in labels)
    assert max(f for f, d in seen if d.startswith("seed 0")) <= 0.5 + 1e-9  # seed 0 is the first half
