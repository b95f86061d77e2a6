"""The tiny world's architecture: the ModelScope component classes at a small size.

AutoencoderKL 4x down (64x64x3 -> 16x16x4), CLIPTextModel (hidden 32, 2 layers, CLIP BPE tokenizer),
UNet3DConditionModel with spatial self-attention at the working 16x16 resolution.
"""

from __future__ import annotations

RESOLUTION = 64
FRAMES = 8
TEXT_HIDDEN = 32


def vae_config() -> dict:
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=RESOLUTION,
        scaling_factor=1.0,  # set from the latents' spread after training
    )


def unet_config() -> dict:
    return dict(
        sample_size=RESOLUTION // 4,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=2,  # UNet3D's legacy name: the number of heads (head dim 16 / 32)
    )


def text_config() -> dict:
    from ..models.tiny import tiny_text_config

    return tiny_text_config(TEXT_HIDDEN, 2)


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(**vae_config())


def build_base():
    """(text encoder, UNet3D), freshly initialised."""
    from diffusers import UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**text_config())), UNet3DConditionModel(**unet_config())
