"""Config -> objects for a training run: components, DataModule, LightningModule, callbacks, loggers, Trainer."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from ..cli import instantiate_checked as instantiate
from ..errors import UserError


@dataclass
class TrainRun:
    components: Any
    datamodule: pl.LightningDataModule
    module: pl.LightningModule
    callbacks: list[pl.Callback]
    loggers: list
    trainer: pl.Trainer


def instantiate_group(cfg: DictConfig | None, what: str) -> list:
    """Every entry of a group node that has a `_target_` (template style: callbacks, logger)."""
    out = []
    if not cfg:
        return out
    if not isinstance(cfg, DictConfig):
        raise UserError(f"{what} config must be a mapping of name -> {{_target_: ...}}")
    for name, node in cfg.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            out.append(instantiate(node))
        elif node is not None:
            raise UserError(f"{what}.{name} has no _target_")
    return out


def build_components(cfg: DictConfig):
    """The model, by registry name (a model config never names code to import)."""
    from ..models.registry import build_model_from_config

    return build_model_from_config(cfg.model)


def build_run(cfg: DictConfig, components=None) -> TrainRun:
    from ..quiet import quiet_third_party

    quiet_third_party()  # Lightning's litlogger tip, the pytree deprecation raised inside Lightning
    # the frozen VAE / text encoder stay in eval mode on purpose
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
    if cfg.get("seed") is not None:
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    comps = components if components is not None else build_components(cfg)
    datamodule = instantiate(cfg.data).attach(comps)
    model_config = OmegaConf.to_container(cfg.model, resolve=True)
    # half-built first: Components is a dataclass, which OmegaConf would try to turn into a config
    module = instantiate(cfg.module, _partial_=True, _convert_="all")(
        components=comps, model_config=model_config
    )
    callbacks = instantiate_group(cfg.get("callbacks"), "callbacks")
    loggers = instantiate_group(cfg.get("logger"), "logger")
    trainer = build_trainer(cfg, callbacks, loggers)
    return TrainRun(comps, datamodule, module, callbacks, loggers, trainer)


def build_trainer(cfg: DictConfig, callbacks: list, loggers: list) -> pl.Trainer:
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    from .checkpoint import atomic_checkpoint_io

    # checkpoints written in their own folder, then renamed (a full disk keeps the previous one);
    # a config that names its own trainer.plugins keeps them
    plugins = {} if "plugins" in cfg.trainer else {"plugins": [atomic_checkpoint_io()]}
    try:
        return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **plugins)
    except MisconfigurationException as exc:  # e.g. trainer=gpu on a machine without one
        msg = " ".join(str(exc).split())
        raise UserError(f"trainer config cannot run here: {msg[:300]}") from None


def log_hyperparameters(run: TrainRun, cfg: DictConfig) -> None:
    if not run.loggers:
        return
    hp = OmegaConf.to_container(cfg, resolve=True)
    hp.pop("hydra", None)
    params = run.module.lora_params()
    hp["lora_parameters"] = sum(p.numel() for p in params)
    hp["model_info"] = run.components.describe()
    for logger in run.loggers:
        logger.log_hyperparams(hp)
