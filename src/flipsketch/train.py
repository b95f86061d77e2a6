"""flipsketch-train: LoRA fine-tuning from Hydra configs (conf/train.yaml).

flipsketch-train experiment=tiny_smoke
flipsketch-train experiment=paper_lora data.root=data/clips trainer=gpu
flipsketch-train experiment=tiny_smoke ckpt_path=<run>/checkpoints/last.ckpt   # resume, in <run>
"""

from __future__ import annotations

from omegaconf import DictConfig

from .cli import cli_main
from .config import DataSettings, ModuleSettings, RunSettings, TrainerSettings
from .tracking import finish_wandb
from .training import settings
from .training.resume import resume_in_place
from .training.task import train

# `train`, `resume_in_place` and `finish_wandb` live in flipsketch.training.task / .resume /
# flipsketch.tracking; they are imported here for the command line (and the old import paths).
__all__ = ["check", "finish_wandb", "main", "resume_in_place", "train"]


def check(cfg: DictConfig) -> None:
    """Everything a user is likely to mistype, checked before any model is built or file written:
    the typed settings of flipsketch.config, then the rules that are not types."""
    from .checks import reject_nonfinite
    from .models.registry import check_model_config

    reject_nonfinite(cfg)
    run = settings.build(RunSettings, cfg)
    check_model_config(cfg.model)
    settings.check_data_source(settings.section(DataSettings, cfg, "data"))
    settings.check_accelerator(settings.section(TrainerSettings, cfg, "trainer"))
    settings.section(ModuleSettings, cfg, "module")
    settings.check_logger(cfg.get("logger"))
    settings.check_resume(cfg, run.ckpt_path)


def _optimized_metric(cfg: DictConfig, metrics: dict) -> float | None:
    value = metrics.get(cfg.get("optimized_metric") or "")
    return None if value is None else float(value)


HELP = """flipsketch-train: LoRA fine-tuning of the text-to-video UNet on sketch clips (Lightning + Hydra).

Usage (Hydra overrides, key=value):
  flipsketch-train experiment=tiny_smoke                              # seconds on a CPU
  flipsketch-train experiment=paper_lora data.root=DIR model.path=DIR trainer=gpu
  flipsketch-train ... ckpt_path=<run>/checkpoints/last.ckpt          # resume, in the same run folder
  flipsketch-train -m experiment=tiny_smoke hparams_search=lora_lr    # a sweep, combined table at the end

Common settings (conf/train.yaml):
  data.root=DIR (python -m data_gen out=DIR builds one)  data.num_frames=16  data.batch_size=1
  module.lora.rank=4 module.lora.targets=attn|spatial|temporal|all  module.optimizer.lr=1e-4
  trainer.max_steps=2500 trainer.val_check_interval=250 trainer.precision=32-true|16-mixed|bf16-mixed
  callbacks.model_checkpoint.every_n_train_steps=250  callbacks.model_checkpoint_time.train_time_interval.minutes=10
  logger=csv|wandb|tensorboard|none (W&B: WANDB_MODE=online|offline|disabled; offline when unset)
  seed=0  train=false (only validate ckpt_path)  export_lora=true
Writes logs/train/runs/<time>/ (checkpoints/, lora/pytorch_lora_weights.safetensors, samples/, logs).
"""

main = cli_main(
    "train",
    train,
    program="flipsketch-train",
    help_text=HELP,
    check=check,
    prepare_argv=resume_in_place,
    result=_optimized_metric,
    job_metrics=lambda cfg, out: {k: v for k, v in out.items() if k != "lora_path"},
)


if __name__ == "__main__":
    main()
