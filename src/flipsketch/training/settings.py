"""flipsketch-train's settings: the typed sections of conf/train.yaml (declared, with their checks,
in flipsketch.config) built from a composed config, and the rules that are not types: the dataset
folder or the data_gen settings that build one, a GPU trainer on a machine without one, the
TensorBoard logger's package, and the checkpoint a run resumes from."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path

from omegaconf import DictConfig

from ..checks import as_str
from ..config import DataSettings, TrainerSettings, typed_settings
from ..errors import UserError

_UNSET = object()


def _get(node, key: str, default=None):
    """`node.key` resolved, or `default` when absent or not resolvable before the run starts
    (e.g. a path under ${paths.output_dir}, which Hydra only knows inside the run). A mapping comes
    back as a dict of its resolvable entries."""
    from omegaconf import OmegaConf
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


def build(cls, node, prefix: str = ""):
    """`cls` from a config node (or the dict `_get` makes of one): each key `cls` declares that is
    set and resolvable, checked by `typed_settings` in the order `cls` declares them; a key left out keeps
    the class's default, and a key `cls` does not declare is its consumer's."""
    got = {}
    for f in fields(cls):
        value = node.get(f.name, _UNSET) if isinstance(node, dict) else _get(node, f.name, _UNSET)
        if value is _UNSET:
            continue
        if is_dataclass(f.default_factory):  # a nested section: a value that is no mapping sets nothing
            sub = value if isinstance(value, dict) else {}
            got[f.name] = build(f.default_factory, sub, f"{prefix}.{f.name}" if prefix else f.name)
        else:
            got.update(typed_settings(cls, {f.name: value}, prefix))
    return cls(**got)


def section(cls, cfg: DictConfig, key: str):
    """`build(cls)` of the group `cfg.<key>`, or None when the config has no such group."""
    node = cfg.get(key)
    return None if node is None else build(cls, node, key)


def check_data_source(data: DataSettings | None) -> None:
    """data.root is an existing dataset folder, unless data.generate (data_gen's settings) builds one."""
    if data is None:
        return
    if data.root is not None and not data.generate:
        root = Path(as_str(data.root, "data.root")).expanduser()
        if not root.is_dir():
            raise UserError(f"dataset folder not found: {root} (build one with `python -m data_gen out=DIR`)")
    if data.generate:
        from data_gen.settings import gen_config

        gen = data.generate
        if not isinstance(gen, dict):
            raise UserError("data.generate must be a mapping of data_gen settings")
        gen_config({**gen, "out": gen.get("out") or "."}, prefix="data.generate.").validate()


def check_accelerator(trainer: TrainerSettings | None) -> None:
    """trainer.accelerator=gpu (or cuda) needs a CUDA GPU on this machine."""
    if trainer is not None and trainer.accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(
                f"trainer.accelerator={trainer.accelerator} asked for, but no CUDA GPU is available"
            )


def check_logger(logger) -> None:
    """logger=tensorboard needs its package."""
    if logger is not None and "tensorboard" in logger and logger.get("tensorboard") is not None:
        from .loggers import check_tensorboard

        check_tensorboard()


def check_resume(cfg: DictConfig, ckpt_path) -> None:
    """ckpt_path (when set) is a checkpoint this run can resume: a file, of flipsketch's LoRA
    training, with the model and LoRA shape this run asks for."""
    if ckpt_path in (None, ""):
        return
    from .checkpoint import check_resumable

    if not Path(as_str(ckpt_path, "ckpt_path")).expanduser().is_file():
        raise UserError(f"ckpt_path not found: {ckpt_path}")
    _check_fits(check_resumable(ckpt_path), cfg, ckpt_path)


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
