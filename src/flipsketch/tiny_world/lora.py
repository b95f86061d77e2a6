"""The lora stage: the sketch LoRA, trained by the project's Lightning trainer on the exported base."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..atomic import atomic_path
from .card import write_model_card
from .state import require


def train_lora(run: Path, out: Path, steps: int, overrides: list[str]) -> Path:
    """The sketch LoRA (the Lightning trainer, `experiment=tiny_world_lora`) on the exported base."""
    import shutil

    from ..models.lora import LORA_FILENAME
    from ..training.run import finish_wandb, train
    from ..training.smoke import compose_train

    require(out / "unet", "export")
    lora_run = run / "lora"
    shutil.rmtree(lora_run, ignore_errors=True)
    t0 = time.time()
    cfg = compose_train(
        [
            "experiment=tiny_world_lora",
            f"model.path={out.resolve()}",
            f"trainer.max_steps={steps}",
            *overrides,
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
        json.dumps({"step": steps, "seconds": time.time() - t0, "overrides": overrides}, indent=1)
    )
    write_model_card(run, out)
    return out / "lora" / LORA_FILENAME
