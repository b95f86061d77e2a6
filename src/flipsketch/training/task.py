"""The training task: build a run from a composed train config, fit it, export the LoRA.

    from flipsketch.training.task import compose_train, finish_wandb, train
    metrics = train(compose_train(["experiment=tiny_smoke"], out_dir=tmp))

`flipsketch-train` (flipsketch/train.py) is the command line around `train`; the demo and the tiny
world's LoRA stage call it here, without the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, open_dict

from ..errors import UserError
from ..tracking import finish_wandb

__all__ = ["compose_train", "finish_wandb", "train"]


def compose_train(
    overrides: Sequence[str] = (), out_dir: str | Path | None = None, config_name: str = "train"
) -> DictConfig:
    """Compose the real train config (Hydra compose API), with every output under `out_dir`."""
    from ..cli import compose_config

    cfg = compose_config(config_name, list(overrides))
    if out_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(out_dir)
            cfg.paths.log_dir = str(out_dir)
            if "data_dir" in cfg.paths:
                cfg.paths.data_dir = str(Path(out_dir) / "data")
    return cfg


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
