"""flipsketch-train: LoRA fine-tuning from Hydra configs (conf/train.yaml).

flipsketch-train experiment=tiny_smoke
flipsketch-train experiment=paper_lora data.root=data/clips trainer=gpu
flipsketch-train experiment=tiny_smoke ckpt_path=<run>/checkpoints/last.ckpt   # resume, in <run>
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from .cli import cli_main
from .config import DataSettings, ModuleSettings, RunSettings, TrainerSettings
from .tracking import finish_wandb
from .training import settings
from .training.task import train

# `train` and `finish_wandb` live in flipsketch.training.task / flipsketch.tracking; they are imported
# here for the command line (and the old import path `from flipsketch.train import train`).
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


def _override_value(text: str) -> str:
    """A path as a Hydra override value (quoted when Hydra's lexer needs it)."""
    import re

    if re.fullmatch(r"[A-Za-z0-9_\-+./:@]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def resume_in_place(argv: list[str]) -> list[str]:
    """The run folder a resumed run keeps: `ckpt_path=<run>/checkpoints/X.ckpt` continues in <run>
    (hydra.run.dir=<run>: the same checkpoints/, logs and LoRA export, one history), and a SLURM job
    with trainer=slurm runs in <log_dir>/train/slurm/<job id>, so a requeued job (same id) finds its
    hpc checkpoint and its folder again. An explicit hydra.run.dir, or a multirun, is left alone."""
    import os

    from .cli import raw_compose, split_argv

    flags, overrides = split_argv(argv)
    keys = [o.lstrip("+~").partition("=")[0] for o in overrides]
    if flags or "hydra.run.dir" in keys:
        return list(argv)
    ckpt = next((o.partition("=")[2] for o in overrides if o.partition("=")[0] == "ckpt_path"), "")
    ckpt = ckpt.strip("'\"")
    if ckpt:
        path = Path(ckpt).expanduser().absolute()
        run = path.parent.parent
        if path.is_file() and path.parent.name == "checkpoints" and (run / ".hydra").is_dir():
            return [*argv, f"hydra.run.dir={_override_value(str(run))}"]
        return list(argv)
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
            job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        try:
            choice = raw_compose("train", overrides, return_hydra_config=True).hydra.runtime.choices.trainer
        except Exception:  # noqa: BLE001 - the precheck reports a config that does not compose
            return list(argv)
        if choice == "slurm":
            return [*argv, f"hydra.run.dir=${{paths.log_dir}}/${{task_name}}/slurm/{_override_value(job)}"]
    return list(argv)


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
