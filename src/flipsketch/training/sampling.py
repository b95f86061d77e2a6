"""Validation videos: after each validation, sample fixed prompts with the model being trained.

The sketches are the first frames of the first val clips and the prompts their captions (or the
fixed `prompts` list). Sampling goes through `FlipSketchPipeline` (FlipSketch sampling, or plain
text-to-video with `sampler.reference_frame=false`) with few steps; videos are written with
imageio/PIL under `dirpath/step_<N>/` and logged by path to W&B when a WandbLogger is attached.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytorch_lightning as pl
import torch

from ..config import SamplerConfig
from ..models.activation_checkpointing import enable_block_checkpointing
from ..outputs import VIDEO_FORMATS, check_formats, write_gif, write_mp4

WRITERS = dict(zip(VIDEO_FORMATS, (write_gif, write_mp4), strict=True))  # the formats a sample is written as


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "sample"


class SampleVideos(pl.Callback):
    def __init__(
        self,
        dirpath: str,
        num_samples: int = 2,
        prompts: list[str] | None = None,
        seeds: tuple[int, ...] = (0,),
        num_inference_steps: int = 4,
        num_frames: int = 8,
        guidance_scale: float = 9.0,
        sampler: dict | None = None,
        formats: tuple[str, ...] = ("gif", "mp4"),
        fps: int = 8,
        every_n_validations: int = 1,
    ):
        formats = check_formats(formats, "callbacks.sample_videos.formats", VIDEO_FORMATS)
        self.dirpath = Path(str(dirpath))
        self.num_samples, self.prompts, self.seeds = num_samples, list(prompts or []), [int(s) for s in seeds]
        self.formats, self.fps, self.every = tuple(formats), fps, max(1, int(every_n_validations))
        knobs = {
            **dict(sampler or {}),
            "num_frames": num_frames,
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
        }
        self.config = SamplerConfig.from_dict(knobs)  # tau1/tau2 unset: the paper's, scaled to the steps
        self._validations = 0
        self.written: list[Path] = []

    def examples(self, trainer: pl.Trainer) -> list[tuple]:
        dm = trainer.datamodule
        pairs = dm.val_examples(self.num_samples) if dm is not None and hasattr(dm, "val_examples") else []
        if self.prompts:  # fixed prompts; sketches from the val clips where there are enough
            sketches = [p[0] for p in pairs] or [None]
            pairs = [(sketches[i % len(sketches)], prompt) for i, prompt in enumerate(self.prompts)]
        if not self.config.reference_frame:
            pairs = [(None, prompt) for _, prompt in pairs]
        return pairs

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not self.num_samples and not self.prompts:
            return
        self._validations += 1
        if (self._validations - 1) % self.every or not trainer.is_global_zero:
            return
        with torch.inference_mode(False), trainer.precision_plugin.forward_context():
            self.sample(trainer, pl_module)

    def sample(self, trainer: pl.Trainer, pl_module) -> list[Path]:
        from ..pipeline import FlipSketchPipeline

        unet = pl_module.unet
        was_training = pl_module.training
        params = pl_module.lora_params()
        flags = [p.requires_grad for p in params]
        for p in params:  # frame alignment backpropagates to the latents only
            p.requires_grad_(False)
        pl_module.eval()
        out_dir = self.dirpath / f"step_{trainer.global_step:06d}"
        out_dir.mkdir(parents=True, exist_ok=True)
        paths, captions = [], []
        try:
            pipe = FlipSketchPipeline(pl_module.components, self.config)
            for i, (sketch, prompt) in enumerate(self.examples(trainer)):
                frames = pipe(sketch, prompt, seeds=self.seeds).frames
                for s, video in zip(self.seeds, frames, strict=True):
                    for fmt in self.formats:
                        path = out_dir / f"{i:02d}_{_slug(prompt)}_seed{s}.{fmt}"
                        WRITERS[fmt](path, video, self.fps)
                        if fmt == self.formats[0]:
                            paths.append(path)
                            captions.append(f"{prompt} (seed {s})")
        finally:
            # (the pipeline installs its composition processors for each call only and puts ours back)
            if getattr(pl_module, "activation_checkpointing", False):
                enable_block_checkpointing(unet)  # alignment's checkpointing context unwraps the blocks
            for p, flag in zip(params, flags, strict=True):
                p.requires_grad_(flag)
            pl_module.train(was_training)
        self.written.extend(paths)
        self._log(trainer, paths, captions)
        return paths

    def _log(self, trainer: pl.Trainer, paths: list[Path], captions: list[str]) -> None:
        from pytorch_lightning.loggers import WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger) and paths:
                logger.log_video(
                    "val/videos",
                    [str(p) for p in paths],
                    step=trainer.global_step,
                    caption=captions,
                    format=[p.suffix[1:] for p in paths],
                )
