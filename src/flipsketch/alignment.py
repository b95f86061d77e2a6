"""Iterative frame alignment (docs/METHOD.md section 4).

At early steps (i < tau1) the non-reference frames are optimised so that, denoised jointly with
the reference frame under the text prompt, the UNet's prediction for frame 0 matches the
prediction for the reference frame denoised alone with the empty prompt:

    eta_1 = UNet(x_ref, t, "")                       (no grad)
    L     = || UNet([x_ref, f_1..f_{N-1}], t, p)[0] - eta_1 ||^2

Gradients reach frame 0 only through the temporal layers, so they flow through the whole UNet;
the UNet is frozen and wrapped in activation checkpointing to bound memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .models.activation_checkpointing import block_checkpointing


@dataclass
class AlignResult:
    latents: torch.Tensor
    losses: list[float]  # loss before each update (summed over the batch)
    final_loss: float  # loss before the last update, or after it when measured (measure_final)
    measure_seconds: float = 0.0  # time spent on the measuring forward (benchmarks subtract it)


def alignment_target(unet, ref_latent: torch.Tensor, t, empty_emb: torch.Tensor) -> torch.Tensor:
    """eta_1 (1, C, h, w), float32: the UNet's noise for the reference frame (1, C, 1, h, w) alone,
    under the empty prompt, without gradients."""
    with torch.no_grad():
        return unet(ref_latent, t, encoder_hidden_states=empty_emb).sample[:, :, 0].float()


def alignment_loss(
    unet, ref: torch.Tensor, frames: torch.Tensor, t, cond_emb: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """L, a float32 scalar: per sample the mean square of UNet([ref, frames], t, prompt)[frame 0]
    minus eta_1 (`target`), summed over the samples (they are independent: each gets its own
    gradient). `ref` (B, C, 1, h, w) and `frames` (B, C, N-1, h, w) in the UNet's dtype."""
    pred0 = unet(torch.cat([ref, frames], dim=2), t, encoder_hidden_states=cond_emb).sample[:, :, 0].float()
    return ((pred0 - target) ** 2).mean(dim=(1, 2, 3)).sum()


def align_frames(
    unet,
    latents: torch.Tensor,
    ref_latent: torch.Tensor,
    t,
    cond_emb: torch.Tensor,
    empty_emb: torch.Tensor,
    iters: int = 10,
    lr: float = 1e-3,
    checkpointing: bool = True,
    variable_dtype: torch.dtype = torch.float32,
    drop_last_update: bool = False,
    eta1: torch.Tensor | None = None,
    measure_final: bool = False,
    on_iter=None,
) -> AlignResult:
    """Optimise frames 1..N-1 of `latents` (B, C, F, h, w); frame 0 is set to `ref_latent`.

    variable_dtype bfloat16 and drop_last_update reproduce the official code's quirks.
    on_iter(k, loss): called after each of the `iters` iterations (progress display)."""
    b = latents.shape[0]
    model_dtype = latents.dtype
    ref = ref_latent.to(model_dtype).expand(b, -1, -1, -1, -1)
    if eta1 is None:
        eta1 = alignment_target(unet, ref_latent.to(model_dtype), t, empty_emb)
    target = eta1.float().expand(b, -1, -1, -1)
    var = latents[:, :, 1:].detach().to(variable_dtype).clone().requires_grad_(True)
    opt = torch.optim.Adam([var], lr=lr)
    losses: list[float] = []
    kept = var.detach().clone()
    with torch.enable_grad(), block_checkpointing(unet, checkpointing):
        for k in range(iters):
            loss = alignment_loss(unet, ref, var.to(model_dtype), t, cond_emb, target)
            losses.append(float(loss.detach()))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if on_iter is not None:
                on_iter(k, losses[-1])
            if drop_last_update and k == iters - 1:
                break  # the official loop computes a last update that never reaches the latents
            opt.step()
            kept = var.detach().clone()
    out = torch.cat([ref, kept.to(model_dtype)], dim=2)
    final, seconds = (losses[-1] if losses else float("nan")), 0.0
    if measure_final:  # one extra forward: the loss of the latents actually returned
        t0 = time.perf_counter()
        with torch.no_grad():
            final = float(alignment_loss(unet, ref, kept.to(model_dtype), t, cond_emb, target))
        seconds = time.perf_counter() - t0
    return AlignResult(latents=out, losses=losses, final_loss=final, measure_seconds=seconds)
