"""The five components every model of the registry provides, whatever their size."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Components:
    """Tokenizer, text encoder, VAE, 3D UNet and DDIM scheduler of a text-to-video model.

    The same classes as ModelScope text-to-video-ms-1.7b whatever the registry entry, so every
    code path downstream (sampling, inversion, training) is the real one.
    """

    tokenizer: Any
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    scheduler: Any
    name: str
    source: str
    resolution: int
    info: dict = field(default_factory=dict)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.resolution // self.vae_scale_factor

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Components:
        for module in (self.text_encoder, self.vae, self.unet):
            current = next(module.parameters()).dtype
            module.to(device=device, dtype=None if dtype in (None, current) else dtype)
        return self

    def eval_frozen(self) -> Components:
        for module in (self.text_encoder, self.vae, self.unet):
            module.eval()
            module.requires_grad_(False)
        return self

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "resolution": self.resolution, **self.info}
