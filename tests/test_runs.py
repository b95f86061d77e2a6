"""Traceable runs: animate's run folder (config.yaml) and meta.json provenance; a resumed training
run continues in its own folder."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from flipsketch.animate import main as animate_main
from flipsketch.train import resume_in_place

FAST = [
    "model=tiny",
    "sampler.num_frames=3",
    "sampler.num_inference_steps=2",
    "sampler.align_iters=1",
    "progress=false",
    "output.formats=[png]",
]


def test_animate_writes_config_and_provenance(tmp_path, sketch_png):
    out = tmp_path / "out"
    assert animate_main([f"sketch={sketch_png}", "prompt=a ball", f"out={out}", *FAST]) == 0
    cfg = OmegaConf.load(out / "config.yaml")
    assert cfg.sampler.num_inference_steps == 2 and cfg.prompt == "a ball" and cfg.model.name == "tiny"
    meta = json.loads((out / "seed0" / "meta.json").read_text())
    assert meta["versions"]["torch"] and meta["versions"]["diffusers"]
    assert meta["time_utc"].endswith("Z") and meta["command"].startswith("flipsketch-animate sketch=")
    assert meta["git"] is None or len(meta["git"]["commit"]) == 40


def _train(tmp_path, monkeypatch, *overrides):
    from flipsketch.train import main

    monkeypatch.chdir(tmp_path)
    argv = [f"paths.log_dir={tmp_path}", "experiment=tiny_smoke", "logger=csv"]
    argv += ["callbacks.sample_videos.every_n_validations=100", *overrides]
    return main(argv)


@pytest.mark.slow  # a fast-suite test covers the same path more cheaply; `make test-all` runs it
def test_a_resumed_run_continues_in_its_folder(tmp_path, monkeypatch, capsys):
    assert _train(tmp_path, monkeypatch, "trainer.max_steps=4") == 0
    (run,) = (tmp_path / "train" / "runs").iterdir()
    capsys.readouterr()
    assert _train(tmp_path, monkeypatch, "trainer.max_steps=8", f"ckpt_path={run}/checkpoints/last.ckpt") == 0
    assert [p.name for p in (tmp_path / "train" / "runs").iterdir()] == [run.name]  # no second folder
    assert (run / "checkpoints" / "step_000008.ckpt").is_file()
    assert "resuming at step 4" in (run / "train.log").read_text()
    starts = json.loads((run / "provenance.json").read_text())  # one entry per start of the run
    assert len(starts) == 2 and "ckpt_path=" in starts[1]["command"] and starts[0]["versions"]["torch"]


def test_resume_in_place_leaves_other_runs_alone(tmp_path):
    assert resume_in_place(["ckpt_path=/nowhere/x.ckpt"]) == ["ckpt_path=/nowhere/x.ckpt"]
    assert resume_in_place(["-m", "ckpt_path=a"]) == ["-m", "ckpt_path=a"]
    run = tmp_path / "my run"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    added = resume_in_place([f"ckpt_path={run}/checkpoints/last.ckpt"])[-1]
    assert added == f"hydra.run.dir='{run}'"
    assert (
        resume_in_place([f"ckpt_path={run}/checkpoints/last.ckpt", "hydra.run.dir=x"])[-1]
        == "hydra.run.dir=x"
    )


def test_a_resumed_run_continues_its_lr_schedule_csv_log_and_wandb_step(tmp_path, monkeypatch, capfd):
    """4 steps (cosine to lr 0 at step 4), then resumed to 8: the first resumed step runs at the
    schedule's lr for step 4 of 8 (not the 0 the checkpoint ended on), the CSV log is one file
    (no version_1/ beside version_0/) with each step once, and W&B's summary says step 8."""
    import csv
    import math

    monkeypatch.setenv("WANDB_MODE", "offline")
    log = ["logger=[csv,wandb]"]
    assert _train(tmp_path, monkeypatch, "trainer.max_steps=4", *log) == 0
    (run,) = (tmp_path / "train" / "runs").iterdir()
    ckpt = f"ckpt_path={run}/checkpoints/last.ckpt"
    assert _train(tmp_path, monkeypatch, "trainer.max_steps=8", ckpt, *log) == 0
    assert sorted(p.name for p in (run / "csv").iterdir()) == ["version_0"]
    with open(run / "csv" / "version_0" / "metrics.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("train/lr")]
    steps = [int(r["step"]) for r in rows]
    assert steps == list(range(8)), steps
    lr = {int(r["step"]): float(r["train/lr"]) for r in rows}
    # warmup 2 steps, then cosine over 8: step 4 is at (1 + cos(pi * 2 / 6)) / 2 of 1e-3
    assert lr[4] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 2 / 6)), rel=1e-5)
    assert all(v > 0 for k, v in lr.items() if k < 7)
    # W&B's run summary, as wandb prints it when the resumed run finishes (offline: no summary file)
    import re

    printed = capfd.readouterr()
    text = printed.out + printed.err
    if "Run summary:" not in text:  # wandb's service prints it asynchronously; some runs miss the capture
        pytest.skip("lr and CSV log checked; wandb printed no run summary into this capture")
    summary = dict(re.findall(r"wandb:\s+((?:trainer/)?global_step) (\d+)", text.split("Run summary:")[-1]))
    assert summary == {"global_step": "8", "trainer/global_step": "8"}, text[-1500:]
