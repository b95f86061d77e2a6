"""What a sampling call reports while it runs: UNet calls counted, and one progress bar.

`CallCounter` counts the UNet's forward calls (and the frames they process) through a forward
pre-hook, for the call's stats; `Progress` is the bar over a sample's denoising loop, in UNet
frame-passes (the steps with frame alignment cost many times a later step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .config import SamplerConfig


class Plan(Protocol):
    """What the bar needs of a denoising schedule (`denoise.Schedule` is one): which steps cost what."""

    use_cfg: bool

    def aligns(self, i: int) -> bool: ...

    def reference_runs(self, i: int) -> bool: ...

    def reference_frames(self, i: int) -> int: ...


class CallCounter:
    """Counts UNet forward calls (and frames processed) through a forward pre-hook."""

    def __init__(self, unet):
        self.calls = 0
        self.frames = 0
        self._h = unet.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        self.calls += 1
        self.frames += sample.shape[0] * sample.shape[2]

    def close(self):
        self._h.remove()


# An alignment iteration in forward passes of the same frames: forward + backward (about two more),
# plus the forward recomputed by activation checkpointing when it is on (measured on the tiny
# model on 2 CPU cores: about 5 with checkpointing).
ALIGN_PASS_COST = {True: 5, False: 3}


class Progress:
    """One progress bar over a sample's denoising loop, counted in UNet frame-passes rather than
    steps: the steps i < tau1 run `align_iters` forward+backward passes each and cost many times a
    later step, so a per-step ETA is wrong by minutes. The bar names the step and the alignment
    iteration it is in (and the alignment loss)."""

    def __init__(
        self,
        enabled: bool,
        cfg: SamplerConfig,
        b: int,
        plan: Plan,
        callback: Callable[[float, str], None] | None = None,
    ):
        self.bar, self.done, self.label = None, 0, ""
        self.callback = callback  # callback(fraction done in [0, 1], "step i/N[: aligning k/K]")
        n, steps = cfg.num_frames, cfg.num_inference_steps
        per_iter = ALIGN_PASS_COST[bool(cfg.align_checkpointing)] * b * n
        self.align_units = per_iter
        total = 0
        for i in range(steps):
            if plan.aligns(i):
                total += 1 + cfg.align_iters * per_iter  # eta_1 (the reference alone) + the iterations
            if plan.reference_runs(i):
                total += plan.reference_frames(i)
            total += (2 if plan.use_cfg else 1) * b * n
        self.align_iters, self.total = cfg.align_iters, total
        if not enabled:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total,
            desc="flipsketch",
            leave=False,
            bar_format="{desc} {percentage:3.0f}%|{bar:20}| [{elapsed}<{remaining}]",
        )

    def _report(self, label: str) -> None:
        if self.callback is not None:
            self.callback(min(1.0, self.done / max(1, self.total)), label)

    def step(self, i: int, steps: int) -> None:
        self.label = f"step {i + 1}/{steps}"
        if self.bar is not None:
            self.bar.set_description_str(f"flipsketch {self.label}", refresh=False)
        self._report(self.label)

    def align_iter(self, k: int, loss: float) -> None:
        units = self.align_units + (1 if k == 0 else 0)
        self.done += units
        label = f"{self.label}: aligning {k + 1}/{self.align_iters} (loss {loss:.4g})"
        if self.bar is not None:
            self.bar.set_description_str(f"flipsketch {label}", refresh=False)
            self.bar.update(units)
        self._report(label)

    def advance(self, units: int) -> None:
        self.done += units
        if self.bar is not None:
            self.bar.update(units)
        self._report(self.label)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
