"""flipsketch-animate end to end on the tiny model: files, sidecar, extrapolation, bad input."""

import json

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from flipsketch.animate import main
from flipsketch.checks import RUN_MARKER

FAST = [
    "model=tiny",
    "sampler.num_frames=4",
    "sampler.num_inference_steps=3",
    "sampler.tau1=1",
    "sampler.tau2=2",
    "sampler.align_iters=2",
    "progress=false",
]


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_outputs_are_valid_files(tmp_path, sketch_png, capfd):
    out = tmp_path / "out"
    rc = main([f"sketch={sketch_png}", "prompt=a ball bouncing", f"out={out}", "seeds=[0,1]", *FAST])
    assert rc == 0
    err = capfd.readouterr().err
    assert "kept in float32" not in err and "Loading weights" not in err  # no noise that says nothing
    for seed in (0, 1):
        d = out / f"seed{seed}"
        gif = Image.open(d / "animation.gif")
        assert gif.n_frames == 4 and gif.info.get("loop") == 0 and gif.info.get("duration") == 100
        assert len(imageio.mimread(d / "animation.mp4")) == 4
        pngs = sorted((d / "frames").glob("*.png"))
        assert len(pngs) == 4
        frame = Image.open(pngs[0])
        assert set(frame.getdata()) <= {0, 255}  # Otsu binarisation: pure black and white
        meta = _strict_json((d / "meta.json").read_text())  # no NaN / Infinity
        assert meta["prompt"] == "a ball bouncing" and meta["seed"] == seed
        assert meta["model"]["name"] == "tiny" and meta["flipsketch_version"]
        assert meta["sampler"]["lambda_"] == 0.5 and meta["sampler"]["tau2"] == 2
        assert meta["sampler"]["faithful"]["input_range_01"] is False
        assert (
            meta["tau"] == {"tau1": 1, "tau2": 2} and meta["dtype"] == "float32" and meta["device"] == "cpu"
        )
    assert not [
        p for p in out.iterdir() if p.name.startswith(".") and p.name != RUN_MARKER
    ]  # no temp folders


def test_segments_chain_clips_and_drop_duplicates(tmp_path, sketch_png):
    out = tmp_path / "out"
    main(
        [
            f"sketch={sketch_png}",
            "prompt=a ball",
            f"out={out}",
            "segments=2",
            "output.formats=[png]",
            "output.binarize=false",
            *FAST,
        ]
    )
    assert len(list((out / "seed0" / "frames").glob("*.png"))) == 4 + 3


@pytest.mark.parametrize(
    "args, needle",
    [
        (["sketch=/nonexistent.png", "prompt=a cat"], "not found"),
        (["prompt=a cat"], "no sketch"),
        (["sketch={sketch}", "prompt= "], "prompt is empty"),
        (["sketch={sketch}", "prompt=a cat", "sampler.num_frames=1"], "num_frames"),
        (["sketch={sketch}", "prompt=a cat", "sampler.lambda_=2"], "lambda_"),
        (["sketch={sketch}", "prompt=a cat", "sampler.tau1=-1"], "tau1"),
        (["sketch={sketch}", "prompt=a cat", "seeds=[-3]"], "seeds"),
        (["sketch={sketch}", "prompt=a cat", "nonsense=1"], "bad configuration"),
        (["sketch={text}", "prompt=a cat"], "cannot read"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, sketch_png, capsys, args, needle):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    out = tmp_path / "out"
    args = [a.format(sketch=sketch_png, text=text) for a in args] + [f"out={out}"]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0]
    assert not out.exists()


def test_help_lists_the_knobs(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "sampler.lambda_" in text and "segments" in text


def test_help_states_the_defaults_the_model_runs_and_every_model(capsys):
    """--help's numbers are the ones a run uses: model=tiny_pretrained (the default) runs
    sampler=tiny_world (10 steps, guidance 5), model=modelscope the paper's 25 steps at 9; the
    model list is every registered model."""
    from flipsketch.models.registry import MODEL_REGISTRY

    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "model=tiny_pretrained runs sampler=tiny_world" in text
    assert "sampler.num_inference_steps=10 " in text and "sampler.guidance_scale=5.0" in text
    assert "num_inference_steps=25" not in text and "guidance_scale=9" not in text  # no stale numbers
    models = next(line for line in text.splitlines() if line.startswith("Models"))
    assert set(models.split("): ", 1)[1].split(" | ")) == set(MODEL_REGISTRY), models
    assert main(["--help", "model=modelscope"]) == 0
    text = capsys.readouterr().out
    assert "model=modelscope runs sampler=flipsketch" in text
    assert "sampler.num_inference_steps=25 " in text and "sampler.guidance_scale=9.0" in text
    assert "model.resolution=256" in text and "output.binarize_upscale=4" in text


def test_meta_json_never_holds_nan_or_infinity():
    from flipsketch.outputs import dumps_json

    text = dumps_json({"a": float("nan"), "b": [float("inf"), 1.5], "c": np.float32(2.0)})
    assert _strict_json(text) == {"a": None, "b": [None, 1.5], "c": 2.0}


def test_gpu_dtype_auto_is_bf16_where_supported(monkeypatch):
    import torch

    from flipsketch.animate import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_device("cuda", "auto") == (torch.device("cuda"), torch.bfloat16)
    assert resolve_device("cuda", "float16")[1] == torch.float16  # fp16 stays one setting away
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_device("cuda", "auto")[1] == torch.float16
    assert resolve_device("cpu", "auto")[1] == torch.float32


def test_meta_records_the_scaled_tau(tmp_path, sketch_png):
    out = tmp_path / "out"
    args = [a for a in FAST if not a.startswith("sampler.tau")]  # tau unset: the paper's, scaled to 3 steps
    assert main([f"sketch={sketch_png}", "prompt=a ball", f"out={out}", "output.formats=[png]", *args]) == 0
    meta = _strict_json((out / "seed0" / "meta.json").read_text())
    assert meta["sampler"]["tau1"] is None and meta["tau"] == {"tau1": 1, "tau2": 2}
    assert meta["stats"][0]["tau"] == meta["tau"]


def test_default_frames_are_upscaled_then_thresholded_in_every_format(tmp_path, sketch_png):
    """The authors' upscale-then-Otsu: a 64 px model's default GIF, MP4, PNG frames and SVG are
    256 px per side (not 64 px pixel art); output.binarize_upscale=1 is the model's own size."""
    out = tmp_path / "out"
    args = [f"sketch={sketch_png}", "prompt=a ball bouncing", *FAST, "output.formats=[gif,mp4,png,svg]"]
    assert main([*args, f"out={out}"]) == 0
    d = out / "seed0"
    assert Image.open(d / "animation.gif").size == (256, 256)
    assert imageio.mimread(d / "animation.mp4")[0].shape[:2] == (256, 256)
    frame = Image.open(sorted((d / "frames").glob("*.png"))[0])
    assert frame.size == (256, 256) and set(frame.getdata()) <= {0, 255}
    svg = (d / "animation.svg").read_text()
    assert 'width="256" height="256"' in svg, svg[:300]  # traced from the 256 px frames
    assert main([*args, f"out={tmp_path / 'own'}", "output.binarize_upscale=1"]) == 0
    assert Image.open(tmp_path / "own" / "seed0" / "animation.gif").size == (64, 64)


def test_every_model_writes_at_least_256_px_by_default():
    from flipsketch.cli import CONF_DIR, compose_config, with_model_sampler
    from flipsketch.flipbook import validate_request  # noqa: F401 - the same composition as the CLI
    from flipsketch.outputs import MIN_OUTPUT_SIDE

    models = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
    assert "tiny_pretrained" in models and "modelscope" in models
    for name in models:
        cfg = compose_config("animate", with_model_sampler("animate", [f"model={name}"]))
        side = int(cfg.model.resolution) * int(cfg.output.binarize_upscale)
        assert side >= MIN_OUTPUT_SIDE, (name, side)


def test_without_out_each_run_gets_a_timestamped_run_folder(tmp_path, sketch_png):
    args = [f"sketch={sketch_png}", "prompt=a ball bouncing", *FAST, f"paths.log_dir={tmp_path}"]
    assert main(args) == 0
    runs = list((tmp_path / "animate" / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name[:4].isdigit() and "_" in runs[0].name, runs
    assert (runs[0] / "seed0" / "animation.gif").is_file()
    config = (runs[0] / "config.yaml").read_text()
    assert f"out: {runs[0]}" in config  # the run folder as resolved once


SHIPPED_SVG = __import__("pathlib").Path(__file__).resolve().parents[1] / "data_gen" / "sketches" / "fish.svg"


def test_an_svg_sketch_is_animated_through_the_safe_rasteriser(tmp_path):
    """data_gen's sketches are SVG: flipsketch-animate reads them (data_gen's rasteriser, the one
    the benchmarks use), and the first frame is that drawing."""
    from data_gen.raster import render_svg_file
    from flipsketch.sketch import fit_to_square

    out = tmp_path / "out"
    assert main([f"sketch={SHIPPED_SVG}", "prompt=a fish swimming", f"out={out}", *FAST]) == 0
    assert (out / "seed0" / "animation.gif").is_file()
    from flipsketch.cli import compose_config
    from flipsketch.flipbook import validate_request

    cfg = compose_config(
        "animate", [f"sketch={SHIPPED_SVG}", "prompt=a fish", f"out={tmp_path / 'x'}", *FAST]
    )
    image = validate_request(cfg, svg_reader=render_svg_file).image
    want = fit_to_square(Image.fromarray(render_svg_file(SHIPPED_SVG, 256)).convert("RGB"), 64)
    assert np.array_equal(np.asarray(image), np.asarray(want))
    assert (np.asarray(image.convert("L")) < 128).mean() > 0.01  # ink, not a blank page


@pytest.mark.parametrize(
    "svg, needle",
    [
        ('<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>', "not allowed"),
        (
            '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
            "unsafe XML",
        ),
        ('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0', "not well-formed"),
        (
            '<svg xmlns="http://www.w3.org/2000/svg" width="1e6" height="10"><path d="M0 0L1 1" stroke="#000"/></svg>',
            "canvas larger",
        ),
    ],
)
def test_an_unsafe_or_broken_svg_is_one_error_line(tmp_path, capsys, svg, needle):
    bad = tmp_path / "bad.svg"
    bad.write_text(svg)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main([f"sketch={bad}", "prompt=a cat", f"out={out}", *FAST])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "as an SVG" in err[0] and needle in err[0], err
    assert not out.exists()


def test_an_oversized_svg_is_refused(tmp_path, capsys):
    big = tmp_path / "big.svg"
    big.write_text('<svg xmlns="http://www.w3.org/2000/svg">' + "<!-- pad -->" * 200_000 + "</svg>")
    with pytest.raises(SystemExit):
        main([f"sketch={big}", "prompt=a cat", f"out={tmp_path / 'out'}", *FAST])
    assert "larger than" in capsys.readouterr().err
