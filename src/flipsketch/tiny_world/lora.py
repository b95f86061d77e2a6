"""The lora stage: the sketch LoRA, trained by the project's Lightning trainer on the exported base."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..atomic import atomic_path
from .card import write_model_card
from .state import require

LORA_STEPS = 600  # the recipe's steps (= trainer.max_steps of conf/experiment/tiny_world_lora.yaml)
REQUEST = "request.json"  # what the LoRA run in this folder was asked for


def _request(steps: int, overrides: list[str], out: Path) -> dict:
    return {"steps": steps, "overrides": list(overrides), "out": str(out.resolve())}


def resumable_checkpoint(lora_run: Path, steps: int, overrides: list[str], out: Path) -> Path | None:
    """The newest checkpoint of an unfinished LoRA run that was asked for the same steps, overrides and
    model folder, or None (start afresh): a stopped `--stage lora` continues where it was."""
    req = lora_run / REQUEST
    if (lora_run / "progress.json").exists() or not req.is_file():
        return None
    try:
        if json.loads(req.read_text()) != _request(steps, overrides, out):
            return None
    except ValueError:
        return None
    ckpts = sorted((lora_run / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    return ckpts[-1] if ckpts else None


def train_lora(run: Path, out: Path, steps: int, overrides: list[str]) -> Path:
    """The sketch LoRA (the Lightning trainer, `experiment=tiny_world_lora`) on the exported base."""
    import shutil

    from ..models.lora import LORA_FILENAME
    from ..training.task import compose_train, finish_wandb, train

    require(out / "unet", "export")
    lora_run = run / "lora"
    ckpt = resumable_checkpoint(lora_run, steps, overrides, out)
    if ckpt is None:  # a fresh run: nothing of an earlier request's state carries over
        shutil.rmtree(lora_run, ignore_errors=True)
        lora_run.mkdir(parents=True)
        (lora_run / REQUEST).write_text(json.dumps(_request(steps, overrides, out), indent=1))
    else:
        print(f"resuming the sketch LoRA from {ckpt}")
    t0 = time.time()
    cfg = compose_train(
        [
            "experiment=tiny_world_lora",
            f"model.path={out.resolve()}",
            f"trainer.max_steps={steps}",
            *overrides,
            *([f"ckpt_path={ckpt.resolve()}"] if ckpt is not None else []),
        ],
        out_dir=lora_run.resolve(),
    )
    try:
        metrics = train(cfg)
    finally:
        finish_wandb()
    (out / "lora").mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "lora" / LORA_FILENAME) as tmp:
        shutil.copyfile(metrics["lora_path"], tmp)
    (lora_run / "progress.json").write_text(
        json.dumps(
            {"step": steps, "seconds": time.time() - t0, "overrides": overrides, "resumed": ckpt is not None},
            indent=1,
        )
    )
    write_model_card(run, out)
    return out / "lora" / LORA_FILENAME
