"""The base-domain clips the VAE and base stages train on, drawn on the fly from seeds."""

from __future__ import annotations

import torch

from .arch import RESOLUTION
from .shapes import WorldConfig, render_batch

DOMAINS = (
    "doodles",
    "shapes",
)  # doodles: moving line drawings (the default); shapes: the first world's filled shapes


def render_domain(
    domain: str, seeds, frames: int, spans: dict[str, tuple[int, ...]] | None = None
) -> tuple[torch.Tensor, list[str]]:
    """(B, F, 3, H, W) in [-1, 1] and captions from the chosen base domain.

    spans (doodles): {program: frame counts} a clip's window is cut from (None: doodles.MOTION_SPANS)."""
    if domain == "doodles":
        from .doodles import render_doodle_batch

        return render_doodle_batch(seeds, RESOLUTION, frames, spans)
    if domain == "shapes":
        return render_batch(seeds, WorldConfig(RESOLUTION, frames))
    raise ValueError(f"unknown domain {domain!r}; choose from {', '.join(DOMAINS)}")
