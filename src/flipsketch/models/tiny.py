"""Tiny random components of the same classes as ModelScope, built offline in seconds.

Deterministic from a seed: two calls with the same arguments give bit-identical weights.
"""

from __future__ import annotations

import torch

from .components import Components
from .tokenizer import build_clip_tokenizer

# ModelScope's scheduler settings (docs/METHOD.md section 0).
MODELSCOPE_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
)


def tiny_unet_config(
    channels: tuple[int, ...] = (32, 64),
    cross_attention_dim: int = 32,
    heads: int = 4,
    sample_size: int = 8,
) -> dict:
    n = len(channels)
    return dict(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D",) * (n - 1) + ("DownBlock3D",),
        up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * (n - 1),
        block_out_channels=tuple(channels),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=heads,
    )


def tiny_vae_config(channels: tuple[int, ...] = (16, 16, 16, 16)) -> dict:
    """A 4-level AutoencoderKL: 8x spatial downsampling, like the Stable Diffusion VAE."""
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(channels),
        up_block_types=("UpDecoderBlock2D",) * len(channels),
        block_out_channels=tuple(channels),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=0.18215,
    )


def tiny_text_config(hidden: int = 32, layers: int = 2) -> dict:
    return dict(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act="gelu",
        projection_dim=hidden,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )


def build_tiny(
    seed: int = 0,
    resolution: int = 64,
    unet_channels: tuple[int, ...] = (32, 64),
    vae_channels: tuple[int, ...] = (16, 16, 16, 16),
    text_hidden: int = 32,
    text_layers: int = 2,
    heads: int = 4,
    name: str = "tiny",
) -> Components:
    """Random tiny tokenizer/text encoder/VAE/UNet3D/DDIM, deterministic from `seed`."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    vae_factor = 2 ** (len(vae_channels) - 1)
    if resolution % vae_factor:
        raise ValueError(f"resolution {resolution} is not a multiple of the VAE factor {vae_factor}")
    fork = torch.random.fork_rng(devices=[])
    with fork:
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(CLIPTextConfig(**tiny_text_config(text_hidden, text_layers)))
        vae = AutoencoderKL(**tiny_vae_config(tuple(vae_channels)))
        unet = UNet3DConditionModel(
            **tiny_unet_config(tuple(unet_channels), text_hidden, heads, resolution // vae_factor)
        )
    scheduler = DDIMScheduler(**MODELSCOPE_SCHEDULER)
    comps = Components(
        tokenizer=build_clip_tokenizer(),
        text_encoder=text_encoder,
        vae=vae,
        unet=unet,
        scheduler=scheduler,
        name=name,
        source=f"random(seed={seed})",
        resolution=resolution,
    )
    return comps.eval_frozen()


def build_modelscope_random(seed: int = 0, resolution: int = 256, text_layers: int = 23) -> Components:
    """The exact ModelScope architecture (1.41B-parameter UNet3D) with random weights."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet3DConditionModel(sample_size=resolution // 8)  # defaults are ModelScope's
        vae = AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            latent_channels=4,
            sample_size=resolution,
            scaling_factor=0.18215,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=49408,
                hidden_size=1024,
                intermediate_size=4096,
                num_hidden_layers=text_layers,
                num_attention_heads=16,
                max_position_embeddings=77,
                hidden_act="gelu",
                projection_dim=1024,
                bos_token_id=49406,
                eos_token_id=49407,
                pad_token_id=49407,
            )
        )
    comps = Components(
        tokenizer=build_clip_tokenizer(),
        text_encoder=text_encoder,
        vae=vae,
        unet=unet,
        scheduler=DDIMScheduler(**MODELSCOPE_SCHEDULER),
        name="modelscope_random",
        source=f"random(seed={seed})",
        resolution=resolution,
    )
    return comps.eval_frozen()
