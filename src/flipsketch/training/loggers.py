"""Experiment loggers built from conf/logger/*.yaml.

W&B follows its own environment variables: WANDB_MODE (online | offline | disabled), WANDB_PROJECT,
WANDB_ENTITY, WANDB_API_KEY, WANDB_RUN_GROUP, ... are read by wandb itself and never overridden here
(the run's files stay in the run folder, logger.wandb.save_dir, even when WANDB_DIR is set). Only when WANDB_MODE is unset does a run default to offline (the legacy
WANDB_OFFLINE=false turns that default online); `logger.wandb.offline=true|false` forces a mode.
TensorBoard needs the tensorboard package (`pip install -e '.[tensorboard]'`); without it the run is
refused in one line before anything starts."""

from __future__ import annotations

import importlib.util

from ..errors import UserError
from ..tracking import wandb_mode


def wandb_logger(offline=None, **kwargs):
    """Lightning's WandbLogger with the mode of `wandb_mode` (passed to wandb.init as `mode`)."""
    from pytorch_lightning.loggers.wandb import WandbLogger

    kwargs.pop("mode", None)
    # the mode goes to wandb.init; Lightning's own offline=True would set WANDB_MODE=dryrun in this
    # process's environment, which the next job of a sweep would inherit
    return WandbLogger(offline=False, mode=wandb_mode(offline), **kwargs)


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def check_tensorboard() -> None:
    if not tensorboard_available():
        raise UserError(
            "logger=tensorboard needs the tensorboard package: pip install -e '.[tensorboard]' "
            "(or use logger=csv or logger=wandb)"
        )


def tensorboard_logger(**kwargs):
    check_tensorboard()
    from pytorch_lightning.loggers.tensorboard import TensorBoardLogger

    return TensorBoardLogger(**kwargs)
