"""flipsketch-train end to end: tiny_smoke with W&B offline, user errors, CPU DDP."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flipsketch.models import build_model


def train_cli(tmp_path: Path, *overrides: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "flipsketch.train", f"paths.log_dir={tmp_path}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)


def only_run(tmp_path: Path) -> Path:
    runs = list((tmp_path / "train" / "runs").iterdir())
    assert len(runs) == 1
    return runs[0]


def test_tiny_smoke_end_to_end_with_wandb_offline(tmp_path):
    proc = train_cli(tmp_path, "experiment=tiny_smoke", "logger=[wandb,csv]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path)
    assert (run / "dataset" / "metadata.jsonl").is_file()  # generated: none was given
    assert {p.name for p in (run / "checkpoints").glob("*.ckpt")} == {
        "last.ckpt",
        "step_000004.ckpt",
        "step_000008.ckpt",
    }
    for step in ("step_000004", "step_000008"):  # validation videos every 4 steps, GIF + MP4
        assert len(list((run / "samples" / step).glob("*.gif"))) == 1
        assert len(list((run / "samples" / step).glob("*.mp4"))) == 1
    rows = list(csv.DictReader(open(next(run.glob("csv/*/metrics.csv")))))
    assert sum(1 for r in rows if r.get("val/loss")) == 2 and sum(1 for r in rows if r.get("train/loss")) == 8
    wandb_runs = list((run / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1 and list(wandb_runs[0].glob("files/media/videos/val/*.gif"))
    assert "wandb sync" in proc.stdout + proc.stderr  # the run was finished
    lora = run / "lora" / "pytorch_lora_weights.safetensors"
    from flipsketch.evaluation.overlap import lora_train_sources

    sources = lora_train_sources(lora)  # what it was trained on, for evaluation's overlap check
    train_rows = [
        r for r in map(json.loads, open(run / "dataset" / "metadata.jsonl")) if r["split"] == "train"
    ]
    assert sorted(s["sha256"] for s in sources) == sorted({r["source_sha256"] for r in train_rows})
    comps = build_model("tiny", lora=str(lora))
    assert any(p.abs().sum() > 0 for n, p in comps.unet.named_parameters() if "lora_B" in n)


@pytest.mark.slow  # redundant with the fast suite's smaller tests; `make test-all` runs it
def test_user_errors_are_one_line_and_exit_2(tmp_path):
    proc = train_cli(
        tmp_path,
        "experiment=tiny_smoke",
        "logger=none",
        f"data.root={tmp_path / 'nope'}",
        "data.generate=null",
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: dataset folder not found") and "Traceback" not in proc.stderr
    proc = train_cli(tmp_path, "experiment=tiny_smoke", "logger=none", "ckpt_path=/no/such.ckpt")
    assert proc.returncode == 2 and "ckpt_path not found" in proc.stderr


@pytest.mark.slow
def test_cpu_ddp_two_processes(tmp_path):
    proc = train_cli(
        tmp_path, "experiment=tiny_smoke", "trainer=cpu_ddp", "logger=csv", "trainer.max_steps=4"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 4
    assert (run / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert "world_size: 2" in proc.stdout + proc.stderr or "MEMBER: 2/2" in proc.stdout + proc.stderr
