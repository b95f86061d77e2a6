"""Bad input to every CLI, as a careless user or a hostile file would give it.

Each case runs the CLI's `main(argv)` in-process and asserts the promise of the README: exit code 2,
exactly one line on stderr starting with `error:`, no traceback, nothing written anywhere (not the
output folder, not a Hydra run folder), and no model built before the refusal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tests.conftest import draw_sketch

UNWRITABLE = "/proc/flipsketch-no-such-dir/out"  # refused by the kernel even for root


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Input files of every kind, in a folder that is also the working directory."""
    monkeypatch.chdir(tmp_path)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    draw_sketch(96).save(inputs / "sketch.png")
    (inputs / "notes.txt").write_text("hello")
    (inputs / "bad_lora.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    (inputs / "junk.ckpt").write_bytes(os.urandom(300))
    torch.save({"weights": torch.zeros(4096)}, inputs / "whole.ckpt")
    data = (inputs / "whole.ckpt").read_bytes()
    (inputs / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    torch.save({"state_dict": {}, "epoch": 0}, inputs / "foreign.ckpt")
    meta = {
        "lora": {"rank": 4, "alpha": None, "targets": "attn", "text_encoder": False},
        "unet_targets": [],
        "text_encoder_targets": [],
        "model": {"_target_": "flipsketch.models.build_model", "name": "tiny", "seed": 0, "resolution": 64},
    }
    torch.save({"flipsketch": meta, "state_dict": {}, "global_step": 3}, inputs / "ours.ckpt")
    bad_svgs = inputs / "bad_svgs"
    bad_svgs.mkdir()
    (bad_svgs / "broken.svg").write_text("<svg")
    (bad_svgs / "empty.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>')
    (bad_svgs / "captions.json").write_text(json.dumps({"broken": "a cat", "empty": "a dog"}))
    return {
        "tmp": str(tmp_path),
        "sketch": str(inputs / "sketch.png"),
        "file": str(inputs / "notes.txt"),
        "bad_lora": str(inputs / "bad_lora.safetensors"),
        "junk": str(inputs / "junk.ckpt"),
        "truncated": str(inputs / "truncated.ckpt"),
        "foreign": str(inputs / "foreign.ckpt"),
        "ours": str(inputs / "ours.ckpt"),
        "bad_svgs": str(bad_svgs),
        "unwritable": UNWRITABLE,
    }


@pytest.fixture
def models_built(monkeypatch):
    """Every model build is recorded (and refused: a refused run must not get this far)."""
    import flipsketch.models.registry as registry

    calls = []

    def refuse(name, *args, **kwargs):
        calls.append(name)
        raise AssertionError(f"model {name} was built before the input was refused")

    monkeypatch.setattr(registry, "build_model", refuse)
    return calls


def assert_refused(capsys, main, argv, needle, world, models_built):
    before = _tree(Path(world["tmp"]))
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert exc.value.code == 2, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert "Traceback" not in out + err
    assert needle in lines[0], lines[0]
    assert _tree(Path(world["tmp"])) == before, "a refused run wrote something"
    assert not models_built
    return lines[0]


def _fill(args, world):
    return [a.format(**world) for a in args]


# ------------------------------------------------------------------------------------- animate
ANIMATE = [
    (["sampler.num_frames=abc"], "sampler.num_frames must be an integer"),
    (["sampler.num_frames=2.5"], "sampler.num_frames must be an integer"),
    (["segments=abc"], "segments must be an integer"),
    (["sampler.align_lr=nan"], "sampler.align_lr must be a finite number"),
    (["sampler.guidance_scale=nan"], "guidance_scale must be a finite number"),
    (["sampler.guidance_scale=inf"], "guidance_scale must be a finite number"),
    (["sampler.lambda_=-inf"], "lambda_ must be a finite number"),
    (["sampler.align=maybe"], "sampler.align must be true or false"),
    (["sampler.tau1=99"], "tau1"),
    (["sampler.lamda_=0.3"], "did you mean sampler.lambda_?"),
    (["modle=tiny"], "did you mean model?"),
    (["model=tinyy"], "did you mean tiny?"),
    (["prompt=a cat's jump"], """prompt="\\"a cat's jump\\"\""""),
    (["prompt=un chat qui saute \u00e9t\u00e9"], "quoted"),
    (["prompt=a, b"], "comma"),
    (["prompt= "], "prompt is empty"),
    (["seeds=[0,"], "cannot read"),
    (["seeds=[0,0]"], "seed twice"),
    (["seeds=abc"], "seeds must be"),
    (["sketch={file}"], "cannot read sketch"),
    (["sketch=/nonexistent/sketch.png"], "sketch not found"),
    (["sketch={tmp}"], "sketch not found"),
    (["out={file}"], "existing file"),
    (["out={file}/sub"], "is a file"),
    (["out={unwritable}"], "not writable"),
    (["model.lora={bad_lora}"], "not a readable safetensors file"),
    (["model.lora=/nonexistent/lora"], "LoRA weights not found"),
    (["model.resolution=abc"], "model.resolution must be an integer"),
    (["model.seeed=1"], "did you mean model.seed?"),
    (["output.formats=[webm]"], "unknown output format"),
    (["output.fps=0"], "output.fps must be >= 1"),
    (["output.binarize=2"], "output.binarize must be true or false"),
    (["device=gpu9"], "unknown device"),
    (["dtype=float8"], "unknown dtype"),
    (["+model.foo=1"], "model tiny has no setting 'foo'"),
    (["model._target_=os.system"], "is not allowed: a config may build only"),
    (["model._target_=collections.OrderedDict"], "FLIPSKETCH_ALLOW_TARGETS=collections.OrderedDict"),
    (["model=modelscope", "model.path={tmp}/nowhere"], "no weights at"),
    (["sampler.num_inference_steps=5000"], "num_inference_steps must be in [1, 1000]"),
    (["--verbose"], "unknown option '--verbose'"),
]


@pytest.mark.parametrize("args, needle", ANIMATE, ids=[" ".join(a) for a, _ in ANIMATE])
def test_animate_refuses(world, capsys, models_built, args, needle):
    from flipsketch.animate import main

    base = ["model=tiny", "sketch={sketch}", "prompt=a cat jumping", "out={tmp}/out", "progress=false"]
    argv = _fill(base + args, world)
    assert_refused(capsys, main, argv, needle, world, models_built)


# ------------------------------------------------------------------------------------ data_gen
DATA_GEN = [
    (["size=abc"], "size must be an integer"),
    (["frames=2.5"], "frames must be an integer"),
    (["val_fraction=nan"], "val_fraction must be a finite number"),
    (["progress=sometimes"], "progress must be true or false"),
    (["sizee=64"], "did you mean size?"),
    (["motion=teleport"], "unknown motion"),
    (["renderer=opengl"], "unknown renderer"),
    (["exclude=[a"], "cannot read"),
    (["out={file}"], "existing file"),
    (["out={unwritable}"], "not writable"),
    (["sketches=[{tmp}/missing]"], "sketch folder not found"),
    (["animations=[{tmp}/missing]"], "animation folder not found"),
    (["sketches=[{bad_svgs}]"], "no usable inputs: 2 skipped (broken.svg: not well-formed XML"),
]


@pytest.mark.parametrize("args, needle", DATA_GEN, ids=[" ".join(a) for a, _ in DATA_GEN])
def test_data_gen_refuses(world, capsys, models_built, args, needle):
    from data_gen.__main__ import main

    argv = _fill(["out={tmp}/out", "progress=false", "workers=1", *args], world)
    assert_refused(capsys, main, argv, needle, world, models_built)


# ---------------------------------------------------------------------------------------- train
TRAIN = [
    (["trainer.max_steps=abc"], "trainer.max_steps must be an integer"),
    (["module.optimizer.lr=nan"], "module.optimizer.lr must be a finite number"),
    (["data.num_frames=2.5"], "data.num_frames must be an integer"),
    (["data.generate.sizee=3"], "did you mean data.generate.size?"),
    (["experiment=tiny_smok"], "did you mean tiny_smoke?"),
    (["modle=tiny"], "did you mean model?"),
    (["model.lora={bad_lora}"], "not a readable safetensors file"),
    (["ckpt_path=/nonexistent/last.ckpt"], "ckpt_path not found"),
    (["ckpt_path={junk}"], "not a readable training checkpoint"),
    (["ckpt_path={truncated}"], "not a readable training checkpoint"),
    (["ckpt_path={foreign}"], "not a flipsketch-train checkpoint"),
    (["ckpt_path={ours}"], "not a Lightning training checkpoint"),
    (["data.root={tmp}/missing", "data.generate=null"], "dataset folder not found"),
    (["seed=-1"], "seed must be >= 0"),
    (["module.lora.targets=everything"], "module.lora.targets must be"),
    (["data.latent_mode=median"], "data.latent_mode must be one of sample, mean"),
    (["trainer.precision=abc"], "trainer.precision must be one of"),
    (["paths.log_dir={unwritable}"], "the run folder"),
    (["--fast"], "unknown option '--fast'"),
]


@pytest.mark.parametrize("args, needle", TRAIN, ids=[" ".join(a) for a, _ in TRAIN])
def test_train_refuses(world, capsys, models_built, args, needle):
    from flipsketch.train import main

    argv = _fill(["experiment=tiny_smoke", "logger=none", "paths.log_dir={tmp}/logs", *args], world)
    assert_refused(capsys, main, argv, needle, world, models_built)


# --------------------------------------------------------------------------------------- export
EXPORT = [
    ([], "no checkpoint"),
    (["ckpt_path=/nonexistent/last.ckpt"], "checkpoint not found"),
    (["ckpt_path={junk}"], "not a readable training checkpoint"),
    (["ckpt_path={truncated}"], "not a readable training checkpoint"),
    (["ckpt_path={foreign}"], "not a flipsketch-train checkpoint"),
    (["ckpt_path={ours}", "out={file}"], "existing file"),
    (["ckpt_path={ours}", "out={unwritable}"], "not writable"),
    (["ckpt_path={ours}", "model=tinyy"], "did you mean tiny?"),
    (["ckpt_path={ours}", "modle=tiny"], "did you mean model?"),
    (["ckpt_path={ours}", "merged=maybe"], "merged must be true or false"),
    (["ckpt_path={ours}", "model=tiny", "model.resolution=abc"], "model.resolution must be an integer"),
    (["ckpt_path={ours}", "model=tiny", "model.lora={bad_lora}"], "not a readable safetensors file"),
]


@pytest.mark.parametrize("args, needle", EXPORT, ids=[" ".join(a) or "nothing" for a, _ in EXPORT])
def test_export_refuses(world, capsys, models_built, args, needle):
    from flipsketch.export import main

    argv = _fill(["paths.log_dir={tmp}/logs", *args], world)
    if not any(a.startswith("out=") for a in argv):
        argv.append(f"out={world['tmp']}/out")
    assert_refused(capsys, main, argv, needle, world, models_built)


# ----------------------------------------------------------------------------------------- eval
EVAL = [
    (["samples_dir={file}"], "existing file"),
    (["samples_dir={unwritable}"], "not writable"),
    (["sampler.guidance_scale=nan"], "guidance_scale must be a finite number"),
    (["sampler.num_frames=abc"], "sampler.num_frames must be an integer"),
    (["sampler.lamda_=1"], "did you mean sampler.lambda_?"),
    (["methods=[fulll]"], "did you mean full?"),
    (["seeds=[0,0]"], "seed twice"),
    (["torch_threads=abc"], "torch_threads must be an integer"),
    (["threads=0"], "threads must be an integer >= 1 or auto"),
    (["benchmark.only=[zzz]"], "no item(s) ['zzz']"),
    (
        ["benchmark.only=null", "benchmark.items=[{{sketch: /nonexistent.png, prompt: a cat}}]"],
        "sketch not found",
    ),
    (["model.lora={bad_lora}"], "not a readable safetensors file"),
    (["output.formats=[webm]"], "unknown output format"),
    (["+variants.full.sampler.tau1=abc"], "sampler.tau1 must be an integer"),
    (["methods=[svd]", "baseline.svd.steps=abc"], "baseline.svd.steps must be an integer"),  # inside the run
    (["-m", "sampler.lambda_=0,abc"], "sampler.lambda_ must be a number"),  # the second job of a sweep
]


@pytest.mark.parametrize("args, needle", EVAL, ids=[" ".join(a) for a, _ in EVAL])
def test_eval_refuses(world, capsys, models_built, args, needle):
    from flipsketch.eval import main

    argv = _fill(["experiment=tiny_table1", "logger=none", "paths.log_dir={tmp}/logs", *args], world)
    assert_refused(capsys, main, argv, needle, world, models_built)


# ----------------------------------------------------------------------------- shared mechanism
def test_refused_run_folder_is_removed_but_an_existing_one_is_kept(tmp_path):
    from flipsketch.cli import remove_run_dir

    anchor = tmp_path / "logs"
    anchor.mkdir()
    run = anchor / "train" / "runs" / "2026-01-01_00-00-00"
    (run / ".hydra").mkdir(parents=True)
    (run / "train.log").write_text("x")
    remove_run_dir(run, anchor)
    assert list(anchor.iterdir()) == []  # the run and the empty parents it created
    keep = tmp_path / "mine"
    (keep / "notes").mkdir(parents=True)
    remove_run_dir(keep, keep)  # a folder that existed before the run is never removed
    assert (keep / "notes").is_dir()
