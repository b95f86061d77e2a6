"""VAE latents of whole clips, encoded once and kept in memory (and optionally on disk).

The authors' trainer cached latents so each step skipped the VAE; we cache every frame of a clip
(4 x h x w floats per frame), so training can still pick random windows from the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from ..models.encode import encode_images
from .data import frames_to_tensor
from .rng import LATENT, torch_generator


def cache_key(records: Sequence[dict], resolution: int, model_id: str, mode: str, seed: int) -> str:
    rows = [[r.get("id"), r.get("clip"), r.get("fingerprint")] for r in records]
    blob = json.dumps([rows, resolution, model_id, mode, seed], sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


def vae_identity(components) -> str:
    """Model name, source and a checksum of the first VAE weights: changes when the VAE changes."""
    w = next(components.vae.parameters()).detach().float().cpu()
    return f"{components.name}|{components.source}|{float(w.sum()):.6e}|{float(w.abs().sum()):.6e}"


def encode_clips(
    records: Sequence[dict],
    load_clip: Callable[[dict], np.ndarray],
    components,
    mode: str = "sample",
    seed: int = 0,
    chunk: int = 16,
    device: str | torch.device | None = None,
) -> list[torch.Tensor]:
    """One (4, T, h, w) float32 CPU tensor per record; posterior noise seeded per record.

    `device`: encode there (e.g. the GPU before Lightning has moved the model), then move the VAE back.
    """
    vae = components.vae
    home = next(vae.parameters()).device
    if device is not None:
        vae.to(device)
    try:
        out = []
        for i, rec in enumerate(records):
            pixels = frames_to_tensor(load_clip(rec), components.resolution)
            gen = torch_generator(seed, LATENT, i)
            z = encode_images(vae, pixels, components.scaling_factor, mode, gen, chunk, dtype=torch.float32)
            out.append(z.permute(1, 0, 2, 3).contiguous().cpu())
        return out
    finally:
        vae.to(home)


def cached_latents(
    records: Sequence[dict],
    load_clip: Callable[[dict], np.ndarray],
    components,
    cache_dir: str | os.PathLike | None = None,
    mode: str = "sample",
    seed: int = 0,
    device: str | torch.device | None = None,
) -> list[torch.Tensor]:
    """Encode the clips, or read them back from `cache_dir/latents-<key>.pt` written by a prior run."""
    if cache_dir is None:
        return encode_clips(records, load_clip, components, mode, seed, device=device)
    key = cache_key(records, components.resolution, vae_identity(components), mode, seed)
    path = Path(cache_dir) / f"latents-{key}.pt"
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    latents = encode_clips(records, load_clip, components, mode, seed, device=device)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(latents, tmp)
    return latents
