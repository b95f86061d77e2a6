"""Learning-rate schedules by optimizer step: linear warmup, then constant, cosine or linear decay.

Not `diffusers.optimization.get_scheduler`: its cosine, linear and constant shapes are these, but its
warmup gives step k of W the factor k / W (here (k + 1) / W), so its first step has lr 0, and it has
no floor (`min_ratio`); tests/training/test_train_module.py pins the lr per step of conf/'s schedules."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

KINDS = ("constant", "cosine", "linear")


def lr_factor(step: int, warmup_steps: int, total_steps: int | None, kind: str, min_ratio: float) -> float:
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant" or not total_steps or total_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if kind == "cosine" else 1.0 - progress
    return min_ratio + (1.0 - min_ratio) * shape


def warmup_schedule(
    optimizer: Optimizer,
    warmup_steps: int = 0,
    total_steps: int | None = None,
    kind: str = "cosine",
    min_ratio: float = 0.0,
) -> LambdaLR:
    """LambdaLR stepping once per optimizer step. `total_steps` None: the module fills in the
    trainer's estimate (max_steps)."""
    if kind not in KINDS:
        raise ValueError(f"schedule kind must be one of {KINDS}, got {kind!r}")

    def factor(step: int) -> float:
        return lr_factor(step, warmup_steps, total_steps, kind, min_ratio)

    return LambdaLR(optimizer, factor)
