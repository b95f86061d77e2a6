"""Plain text-to-video with the evaluated model (its LoRA included) and no reference sketch:
the FlipSketch pipeline with `reference_frame=false`, so no inversion, composition or alignment."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .base import Baseline, register_baseline


@register_baseline("t2v_plain")
class T2VPlainBaseline(Baseline):
    image_conditioned = False
    uses_flipsketch_model = True

    def __init__(self, label: str | None = "Text-to-video (no sketch)", **base):
        super().__init__(label=label, **base)
        self.ctx = None

    def setup(self, ctx) -> None:
        self.ctx = ctx

    def generate(self, image, prompt, num_frames, size, steps, guidance, seed, item=None) -> np.ndarray:
        from ..config import SamplerConfig

        if self.ctx is None:
            raise UserError("t2v_plain runs inside the evaluator (it shares the FlipSketch model)")
        cfg = SamplerConfig.from_dict(
            {
                **self.ctx.sampler_dict(),
                "reference_frame": False,
                "num_frames": int(num_frames),
                "num_inference_steps": int(steps),
                "guidance_scale": float(guidance),
            }
        )
        import torch

        res = self.ctx.pipeline()(
            prompt=prompt,
            image=None,
            generator=torch.Generator().manual_seed(int(seed)),
            sampler=cfg,
            output_type="uint8",
        )
        return res.frames[0]
