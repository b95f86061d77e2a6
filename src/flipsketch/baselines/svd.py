"""Stable Video Diffusion (image -> video, no text) through diffusers' StableVideoDiffusionPipeline.

Weights come from a local diffusers folder (`model_index.json`, `unet/`, `vae/`, `image_encoder/`,
`feature_extractor/`, `scheduler/`) or a hub id on a machine that can reach the hub. `tiny=true`
builds random tiny components offline instead (tests and the CPU demo).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import MissingWeightsError, UserError
from .base import Baseline, fit_frames, register_baseline

LAYOUT = "model_index.json + unet/ vae/ image_encoder/ feature_extractor/ scheduler/ (diffusers layout)"


@register_baseline("svd")
class SVDBaseline(Baseline):
    text_conditioned = False

    def __init__(
        self,
        path: str | None = None,
        tiny: bool = False,
        resolution: int | None = 512,
        fps: int = 7,
        motion_bucket_id: int = 127,
        noise_aug_strength: float = 0.02,
        min_guidance_scale: float = 1.0,
        decode_chunk_size: int = 8,
        dtype: str = "auto",
        label: str | None = "SVD",
        pipeline=None,
        **base,
    ):
        super().__init__(label=label, **base)
        self.path, self.tiny = (None if path in (None, "") else str(path)), bool(tiny)
        self.resolution = resolution
        self.call_kwargs = dict(
            fps=int(fps),
            motion_bucket_id=int(motion_bucket_id),
            noise_aug_strength=float(noise_aug_strength),
            min_guidance_scale=float(min_guidance_scale),
            decode_chunk_size=int(decode_chunk_size),
        )
        self.dtype_name = dtype
        self.pipe = pipeline
        self.device = None
        if pipeline is None and not self.tiny:
            self._source()  # fail before any sampling when the weights are not there

    def settings(self) -> dict:
        return {
            **super().settings(),
            "path": self.path,
            "tiny": self.tiny,
            "resolution": self.resolution,
            **self.call_kwargs,
            "dtype": self.dtype_name,
        }

    def _source(self) -> str | Path:
        if self.path is None:
            raise MissingWeightsError(
                "SVD: no weights configured; set baseline.svd.path=DIR (a diffusers folder)"
            )
        p = Path(os.path.expanduser(self.path))
        if p.is_dir():
            if not (p / "model_index.json").is_file():
                raise MissingWeightsError(f"SVD: {p} has no model_index.json; expected {LAYOUT}")
            return p
        hub_id = not os.path.isabs(self.path) and self.path.count("/") == 1 and not self.path.startswith(".")
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        if hub_id and not offline:
            return self.path
        raise MissingWeightsError(
            f"SVD: no weights at {p}; download them there ({LAYOUT}) or set baseline.svd.path"
        )

    def setup(self, ctx) -> None:
        import torch

        self.device = getattr(ctx, "device", None) or torch.device("cpu")
        if self.pipe is None:
            self.pipe = self._load(self._dtype(ctx))
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)

    def _dtype(self, ctx):
        import torch

        from ..models.loaders import resolve_dtype

        if self.dtype_name == "auto":
            return getattr(ctx, "dtype", None) or torch.float32
        return resolve_dtype(self.dtype_name)

    def _load(self, dtype):
        if self.tiny:
            from .svd_tiny import build_tiny_svd

            return build_tiny_svd()
        from diffusers import StableVideoDiffusionPipeline

        src = self._source()
        try:
            return StableVideoDiffusionPipeline.from_pretrained(
                src, torch_dtype=dtype, local_files_only=isinstance(src, Path)
            )
        except (OSError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise MissingWeightsError(
                f"SVD: could not load from {src} ({first}); expected {LAYOUT}"
            ) from None

    def generate(self, image, prompt, num_frames, size, steps, guidance, seed, item=None) -> np.ndarray:
        import torch

        if image is None:
            raise UserError("SVD needs the sketch image")
        if self.pipe is None:
            self.setup(None)
        side = int(self.resolution or size)
        if side % 8:
            raise UserError(f"baseline.svd.resolution must be a multiple of 8, got {side}")
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        out = self.pipe(
            image.convert("RGB").resize((side, side)),
            height=side,
            width=side,
            num_frames=int(num_frames),
            num_inference_steps=int(steps),
            max_guidance_scale=float(guidance),
            generator=gen,
            output_type="np",
            **self.call_kwargs,
        )
        return fit_frames(np.asarray(out.frames)[0], size)
