"""flipsketch-train: LoRA fine-tuning from Hydra configs (conf/train.yaml).

flipsketch-train experiment=tiny_smoke
flipsketch-train experiment=paper_lora data.root=data/clips trainer=gpu
flipsketch-train experiment=tiny_smoke ckpt_path=<run>/checkpoints/last.ckpt   # resume, in <run>
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from .cli import cli_main
from .errors import UserError
from .tracking import finish_wandb
from .training.run import train

# `train` and `finish_wandb` live in flipsketch.training.run / flipsketch.tracking; they are imported
# here for the command line (and the old import path `from flipsketch.train import train`).
__all__ = ["check", "finish_wandb", "main", "resume_in_place", "train"]

PRECISIONS = (
    "32-true",
    "16-mixed",
    "bf16-mixed",
    "64-true",
    "16-true",
    "bf16-true",
    "transformer-engine",
    "32",
    "16",
    "bf16",
    "64",
)


def _get(node, key: str, default=None):
    """`node.key` resolved, or `default` when absent or not resolvable before the run starts
    (e.g. a path under ${paths.output_dir}, which Hydra only knows inside the run). A mapping comes
    back as a dict of its resolvable entries."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        value = OmegaConf.select(node, key, default=default, throw_on_missing=True)
    except OmegaConfBaseException:
        return default
    if isinstance(value, DictConfig):
        out = {}
        for k in value.keys():
            v = _get(value, str(k), _UNSET)
            if v is not _UNSET:
                out[k] = v
        return out
    if OmegaConf.is_config(value):
        try:
            return OmegaConf.to_container(value, resolve=True)
        except OmegaConfBaseException:
            return default
    return value


_UNSET = object()


def check(cfg: DictConfig) -> None:
    """Everything a user is likely to mistype, checked before any model is built or file written."""
    from .checks import MAX_SEED, as_bool, as_choice, as_float, as_int, as_str, reject_nonfinite
    from .models.registry import check_model_config

    reject_nonfinite(cfg)
    as_bool(_get(cfg, "train", True), "train")
    as_bool(_get(cfg, "export_lora", True), "export_lora")
    if _get(cfg, "seed") is not None:
        as_int(_get(cfg, "seed"), "seed", 0, MAX_SEED)
    check_model_config(cfg.model)
    data = cfg.get("data")
    if data is not None:
        for key in ("num_frames", "stride", "batch_size", "val_batch_size"):
            if _get(data, key) is not None:
                as_int(_get(data, key), f"data.{key}", 1)
        as_int(_get(data, "num_workers", 0), "data.num_workers", 0)
        if _get(data, "max_val_clips") is not None:
            as_int(_get(data, "max_val_clips"), "data.max_val_clips", 0)
        for key in ("cache_latents", "pin_memory"):
            as_bool(_get(data, key, False), f"data.{key}")
        if _get(data, "latent_mode") is not None:
            as_choice(_get(data, "latent_mode"), "data.latent_mode", ("sample", "mean"))
        gen = _get(data, "generate")
        root = _get(data, "root")
        if root is not None and not gen:
            root = Path(as_str(root, "data.root")).expanduser()
            if not root.is_dir():
                raise UserError(
                    f"dataset folder not found: {root} (build one with `python -m data_gen out=DIR`)"
                )
        if gen:
            from data_gen.settings import gen_config

            if not isinstance(gen, dict):
                raise UserError("data.generate must be a mapping of data_gen settings")
            gen_config({**gen, "out": gen.get("out") or "."}, prefix="data.generate.").validate()
    trainer = cfg.get("trainer")
    if trainer is not None:
        for key, lo in (("max_steps", -1), ("max_epochs", -1), ("accumulate_grad_batches", 1)):
            if _get(trainer, key) is not None:
                as_int(_get(trainer, key), f"trainer.{key}", lo)
        for key, lo in (("log_every_n_steps", 1), ("num_sanity_val_steps", -1)):
            if _get(trainer, key) is not None:
                as_int(_get(trainer, key), f"trainer.{key}", lo)
        vci = _get(trainer, "val_check_interval")
        if vci is not None:
            as_float(vci, "trainer.val_check_interval", 0.0)
        if _get(trainer, "gradient_clip_val") is not None:
            as_float(_get(trainer, "gradient_clip_val"), "trainer.gradient_clip_val", 0.0)
        as_bool(_get(trainer, "enable_progress_bar", True), "trainer.enable_progress_bar")
        precision = _get(trainer, "precision")
        if precision is not None and str(precision) not in PRECISIONS:
            raise UserError(f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        accelerator = _get(trainer, "accelerator")
        if accelerator in ("gpu", "cuda"):
            import torch

            if not torch.cuda.is_available():
                raise UserError(f"trainer.accelerator={accelerator} asked for, but no CUDA GPU is available")
    module = cfg.get("module")
    if module is not None:
        lr = _get(module, "optimizer.lr")
        if lr is not None and as_float(lr, "module.optimizer.lr") <= 0:
            raise UserError(f"module.optimizer.lr must be > 0, got {lr}")
        if _get(module, "lora.rank") is not None:
            as_int(_get(module, "lora.rank"), "module.lora.rank", 1, 4096)
        targets = _get(module, "lora.targets")
        if targets is not None and not (
            (isinstance(targets, list) and targets and all(isinstance(t, str) for t in targets))
            or targets in ("attn", "spatial", "temporal", "all")
        ):
            raise UserError(
                f"module.lora.targets must be attn, spatial, temporal, all or a list of module names, got {targets!r}"
            )
        if _get(module, "lora.text_encoder") is not None:
            as_bool(_get(module, "lora.text_encoder"), "module.lora.text_encoder")
        if _get(module, "noise_offset") is not None:
            as_float(_get(module, "noise_offset"), "module.noise_offset")
        for key in ("lora.dropout", "caption_dropout"):
            if _get(module, key) is not None:
                as_float(_get(module, key), f"module.{key}", 0.0, 1.0)
    logger = cfg.get("logger")
    if logger is not None and "tensorboard" in logger and logger.get("tensorboard") is not None:
        from .training.loggers import check_tensorboard

        check_tensorboard()
    ckpt_path = _get(cfg, "ckpt_path")
    if ckpt_path not in (None, ""):
        from .training.checkpoint import check_resumable

        if not Path(as_str(ckpt_path, "ckpt_path")).expanduser().is_file():
            raise UserError(f"ckpt_path not found: {ckpt_path}")
        ckpt = check_resumable(ckpt_path)
        _check_fits(ckpt, cfg, ckpt_path)


def _check_fits(ckpt: dict, cfg: DictConfig, ckpt_path) -> None:
    """The run resumes with the model and LoRA shape the checkpoint was trained with."""
    meta = ckpt["flipsketch"]
    recorded = meta.get("model") if isinstance(meta.get("model"), dict) else {}
    name = _get(cfg, "model.name")
    if recorded.get("name") and name and recorded["name"] != name:
        raise UserError(f"{ckpt_path} was trained on model={recorded['name']}, not model={name}")
    lora = meta["lora"]
    rank = _get(cfg, "module.lora.rank")
    if rank is not None and lora.get("rank") != rank:
        raise UserError(
            f"{ckpt_path} holds a rank-{lora.get('rank')} LoRA, this run asks module.lora.rank={rank}"
        )
    te = _get(cfg, "module.lora.text_encoder")
    if te is not None and bool(lora.get("text_encoder")) != bool(te):
        raise UserError(
            f"{ckpt_path} holds a LoRA with text_encoder={bool(lora.get('text_encoder'))}, "
            f"this run asks module.lora.text_encoder={bool(te)}"
        )


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
