"""flipsketch-train: LoRA fine-tuning from Hydra configs (conf/train.yaml).

flipsketch-train experiment=tiny_smoke
flipsketch-train experiment=paper_lora data.root=data/clips trainer=gpu
flipsketch-train experiment=tiny_smoke ckpt_path=<run>/checkpoints/last.ckpt   # resume
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from .cli import hydra_cli
from .errors import UserError


def train(cfg: DictConfig) -> dict:
    """Build everything from `cfg`, fit (or only validate), export the LoRA; return the metrics."""
    from .training.builders import build_run, log_hyperparameters

    run = build_run(cfg)
    log_hyperparameters(run, cfg)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path and not Path(str(ckpt_path)).is_file():
        raise UserError(f"ckpt_path not found: {ckpt_path}")
    if cfg.get("train", True):
        run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=ckpt_path)
    else:
        run.trainer.validate(run.module, datamodule=run.datamodule, ckpt_path=ckpt_path)
    metrics = {k: float(v) for k, v in run.trainer.callback_metrics.items()}
    if cfg.get("export_lora", True) and cfg.get("train", True) and run.trainer.is_global_zero:
        from .models.lora import save_lora

        out = Path(run.trainer.default_root_dir) / "lora"
        path = save_lora(
            out,
            run.module.unet,
            run.module.text_encoder if run.module.text_encoder_lora_targets else None,
            extra={"global_step": run.trainer.global_step, **run.module.lora_metadata()},
        )
        metrics["lora_path"] = str(path)
        print(f"LoRA weights: {path}")
    return metrics


def finish_wandb() -> None:
    """Close the W&B run if one is open (a crashed job must not leave it to the next one of a sweep)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def _optimized_metric(cfg: DictConfig, metrics: dict) -> float | None:
    value = metrics.get(cfg.get("optimized_metric") or "")
    return None if value is None else float(value)


main = hydra_cli("train", train, result=_optimized_metric, on_exit=finish_wandb)


if __name__ == "__main__":
    main()
