"""Experiment tracking basics shared by training and evaluation: which W&B mode a run uses, and
closing a run that is still open. Foundation layer: imports nothing from flipsketch.

W&B follows its own environment variables (WANDB_MODE, WANDB_PROJECT, ...); only when WANDB_MODE is
unset does a run default to offline (the legacy WANDB_OFFLINE=false turns that default online).
"""

from __future__ import annotations

import os
import sys

_TRUE = ("1", "true", "yes", "on")


def wandb_mode(offline=None) -> str:
    """The W&B mode a run uses: `offline` true/false forces it; None follows WANDB_MODE, and when
    that is unset, offline (WANDB_OFFLINE=false: online)."""
    if offline is not None:
        return "offline" if offline else "online"
    mode = os.environ.get("WANDB_MODE", "").strip()
    if mode:
        return mode
    legacy = os.environ.get("WANDB_OFFLINE", "").strip().lower()
    return "online" if legacy and legacy not in _TRUE else "offline"


def finish_wandb() -> None:
    """Close the W&B run if one is open (a crashed job must not leave it to the next one of a sweep)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()
