"""The training task: build a run from a composed train config, fit it, export the LoRA.

    from flipsketch.training.run import finish_wandb, train
    from flipsketch.training.smoke import compose_train
    metrics = train(compose_train(["experiment=tiny_smoke"], out_dir=tmp))

`flipsketch-train` (flipsketch/train.py) is the command line around `train`; the demo and the tiny
world's LoRA stage call it here, without the CLI.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from ..errors import UserError
from ..tracking import finish_wandb

__all__ = ["finish_wandb", "train"]


def train(cfg: DictConfig) -> dict:
    """Build everything from `cfg`, fit (or only validate), export the LoRA; return the metrics."""
    from .builders import build_run, log_hyperparameters

    ckpt_path = cfg.get("ckpt_path") or None
    if ckpt_path and not Path(str(ckpt_path)).is_file():
        raise UserError(f"ckpt_path not found: {ckpt_path}")
    run = build_run(cfg)
    if ckpt_path:  # resumed in place (resume_in_place): its checkpoints/ is expected to be there
        import warnings

        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    log_hyperparameters(run, cfg)
    if cfg.get("train", True):
        run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=ckpt_path, weights_only=True)
    else:
        run.trainer.validate(run.module, datamodule=run.datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics = {k: float(v) for k, v in run.trainer.callback_metrics.items()}
    if cfg.get("export_lora", True) and cfg.get("train", True) and run.trainer.is_global_zero:
        from ..models.lora import save_lora

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
