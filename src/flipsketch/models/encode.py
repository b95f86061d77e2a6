"""The two encoders every layer calls the same way: prompts -> text embeddings, pixels -> latents.

    emb = encode_prompt(components.tokenizer, components.text_encoder, ["a cat jumping"])
    z = encode_images(components.vae, pixels, components.scaling_factor)  # posterior mean, scaled

Sampling (the prompts and the sketch), training (captions, cached or per-batch latents), the tiny
world's stages and the experiments all encode through these, so a change to either is one edit.
Grad mode is the caller's for the prompt (training may backpropagate into a text-encoder LoRA);
images are always encoded without gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

LATENT_MODES = ("mean", "sample", "dist_sample")


def encode_prompt(
    tokenizer,
    text_encoder,
    prompts: Sequence[str],
    device: torch.device | str | None = None,
    max_length: int | None = None,
) -> torch.Tensor:
    """The text encoder's last hidden state (len(prompts), max_length, D) for `prompts`, padded to
    `max_length` tokens (None: the tokenizer's `model_max_length`) and truncated. The token ids go
    to `device` (None: the text encoder's own, which may be the CPU under offload); the embeddings
    come back where and in the dtype the text encoder made them."""
    ids = tokenizer(
        list(prompts),
        padding="max_length",
        max_length=tokenizer.model_max_length if max_length is None else max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    if device is None:
        device = next(text_encoder.parameters()).device
    return text_encoder(ids.to(device))[0]


@torch.no_grad()
def encode_images(
    vae,
    pixels: torch.Tensor,
    scaling_factor: float | None,
    mode: str = "mean",
    generator: torch.Generator | None = None,
    chunk: int | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Pixels (N, 3, H, W) -> latents (N, 4, h, w), times `scaling_factor` (None: unscaled).

    The pixels go to the VAE's device and dtype. `mode`:
      * ``mean``: the posterior mean;
      * ``sample``: mean + std * noise, the noise drawn in float32 on the CPU from `generator`
        (seeded, whatever the device: training, the tiny world, the experiments);
      * ``dist_sample``: diffusers' `latent_dist.sample(generator)`, the noise drawn on the
        generator's device in the latents' dtype (the faithful posterior samples of the sampler).
    `chunk`: encode (and draw noise) `chunk` images at a time (None: all at once). `dtype`: each
    chunk's latents cast to it before scaling (None: the VAE's dtype)."""
    if mode not in LATENT_MODES:
        raise ValueError(f"latent mode must be one of {', '.join(LATENT_MODES)}, got {mode!r}")
    param = next(vae.parameters())
    step = pixels.shape[0] if chunk is None else chunk
    out = []
    for k in range(0, pixels.shape[0], max(1, step)):
        dist = vae.encode(pixels[k : k + step].to(param.device, param.dtype)).latent_dist
        if mode == "dist_sample":
            z = dist.sample(generator=generator)
        else:
            z = dist.mean
            if mode == "sample":
                eps = torch.randn(z.shape, generator=generator, dtype=torch.float32).to(z.device, z.dtype)
                z = z + dist.std * eps
        out.append(z if dtype is None else z.to(dtype))
    z = torch.cat(out)
    return z if scaling_factor is None else z * scaling_factor
