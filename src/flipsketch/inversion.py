"""DDIM inversion of the sketch latent to the reference noise z_T^ref (docs/METHOD.md section 2).

The loop takes any noise predictor `eps_fn(latents, t) -> eps`, so it can be checked against an
analytic predictor; the pipeline passes the UNet with the empty prompt (one call per step: the
official code's inversion CFG is degenerate, both prompts being empty).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def ddim_invert(
    eps_fn: Callable[[torch.Tensor, int], torch.Tensor],
    latents: torch.Tensor,
    scheduler_config,
    num_inference_steps: int,
    model_timestep: str = "target",
    progress: Callable | None = None,
) -> torch.Tensor:
    """Run DDIM inversion from the clean latent up to the first denoising timestep.

    model_timestep:
      * ``target`` (diffusers' and the official convention): the predictor is queried at the step's
        target timestep t while the latent is still at the previous level;
      * ``input``: the predictor is queried at the latent's own level (t - stride). Exact reverse of
        the DDIM sampler only when the predicted noise stays the same along the path (a point-mass
        predictor); for a trained UNet both are approximations (docs/METHOD.md section 9: measured round trips).
    """
    from diffusers import DDIMInverseScheduler

    if model_timestep not in ("target", "input"):
        raise ValueError(f"model_timestep must be 'target' or 'input', got {model_timestep!r}")
    inverse = DDIMInverseScheduler.from_config(scheduler_config)
    inverse.set_timesteps(num_inference_steps)
    stride = inverse.config.num_train_timesteps // num_inference_steps
    z = latents
    steps = inverse.timesteps
    for t in steps if progress is None else progress(steps):
        t_int = int(t)
        t_model = t_int if model_timestep == "target" else max(t_int - stride, 0)
        eps = eps_fn(z, t_model)
        z = inverse.step(eps, t_int, z).prev_sample
    return z


def ddim_sample(
    eps_fn: Callable[[torch.Tensor, int], torch.Tensor],
    latents: torch.Tensor,
    scheduler,
    num_inference_steps: int,
) -> torch.Tensor:
    """Plain deterministic DDIM sampling (eta 0); used to check inversion round trips."""
    scheduler.set_timesteps(num_inference_steps)
    z = latents
    for t in scheduler.timesteps:
        z = scheduler.step(eps_fn(z, int(t)), t, z).prev_sample
    return z
