"""Helpers only tests use: the alignment loss measured from outside `align_frames`, putting
diffusers' default attention processors back on a UNet, and a small training dataset with
tiny_smoke overrides that train on it in a few steps."""

from __future__ import annotations

from pathlib import Path

import torch

from flipsketch.alignment import alignment_loss, alignment_target


def measured_alignment_loss(unet, latents, ref_latent, t, cond_emb, empty_emb) -> float:
    """The alignment loss of `latents` (B, C, N, h, w) as they stand, frame 0 set to `ref_latent`."""
    b = latents.shape[0]
    target = alignment_target(unet, ref_latent, t, empty_emb)
    ref = ref_latent.to(latents.dtype).expand(b, -1, -1, -1, -1)
    with torch.no_grad():
        return float(alignment_loss(unet, ref, latents[:, :, 1:], t, cond_emb, target))


def alignment_gradient(unet, latents, ref_latent, t, cond_emb, empty_emb) -> tuple[float, torch.Tensor]:
    """The alignment loss and its gradient with respect to frames 1..N-1 (float32), computed as
    `align_frames` computes them, in the UNet's own dtype (for precision checks)."""
    model_dtype = next(unet.parameters()).dtype
    b = latents.shape[0]
    target = alignment_target(unet, ref_latent.to(model_dtype), t, empty_emb.to(model_dtype))
    var = latents[:, :, 1:].detach().float().clone().requires_grad_(True)
    ref = ref_latent.to(model_dtype).expand(b, -1, -1, -1, -1)
    with torch.enable_grad():
        loss = alignment_loss(unet, ref, var.to(model_dtype), t, cond_emb.to(model_dtype), target)
        (grad,) = torch.autograd.grad(loss, var)
    return float(loss.detach()), grad


def remove_composition(unet) -> None:
    """Back to diffusers' default processors."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    unet.set_attn_processor(AttnProcessor2_0())


def tiny_dataset(
    root: str | Path, frames: int = 8, size: int = 64, clips_per_sketch: int = 1, seed: int = 0
) -> Path:
    """A data_gen dataset from the shipped sketches (about 25 clips; well under a second)."""
    from data_gen.build import GenConfig, generate

    root = Path(root)
    if not (root / "metadata.jsonl").is_file():
        generate(
            GenConfig(
                out=root,
                clips_per_sketch=clips_per_sketch,
                frames=frames,
                size=size,
                seed=seed,
                val_fraction=0.2,
                workers=1,
                progress=False,
            )
        )
    return root


def fast_overrides(dataset_root: str | Path, steps: int = 4, videos: bool = False) -> list[str]:
    """tiny_smoke on an existing dataset, no logger, `steps` optimizer steps; sample videos off unless asked."""
    return [
        "experiment=tiny_smoke",
        "logger=none",
        f"data.root={dataset_root}",
        "data.generate=null",
        f"trainer.max_steps={steps}",
        "trainer.val_check_interval=1000",
        f"callbacks.sample_videos.num_samples={1 if videos else 0}",
    ]
