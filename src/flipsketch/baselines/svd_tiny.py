"""A tiny random Stable Video Diffusion pipeline of the real classes, built offline (tests, demo)."""

from __future__ import annotations

import torch


def build_tiny_svd(seed: int = 0):
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNetSpatioTemporalConditionModel(
            sample_size=8,
            in_channels=8,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
            up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
            cross_attention_dim=16,
            num_attention_heads=(2, 4),
            projection_class_embeddings_input_dim=48,
            addition_time_embed_dim=16,
            num_frames=4,
        )
        vae = AutoencoderKLTemporalDecoder(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 3,
            block_out_channels=(32, 32, 32),
            latent_channels=4,
        )
        # the pipeline resizes the conditioning image to 224 before the image encoder
        encoder = CLIPVisionModelWithProjection(
            CLIPVisionConfig(
                hidden_size=16,
                projection_dim=16,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=16,
                image_size=224,
                patch_size=56,
            )
        )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        prediction_type="v_prediction",
        use_karras_sigmas=True,
        timestep_spacing="leading",
    )
    pipe = StableVideoDiffusionPipeline(
        vae=vae.eval(),
        image_encoder=encoder.eval(),
        unet=unet.eval(),
        scheduler=scheduler,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
