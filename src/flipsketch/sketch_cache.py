"""What a sampling call computes once per sketch when asked to (`FlipSketchPipeline(..., reuse=True)`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch
from PIL import Image

from .config import SamplerConfig


class SketchCache:
    """What is the same for every seed, prompt and method of one sketch, computed once
    (`FlipSketchPipeline(..., reuse=True)`): the prompts' embeddings, the inverted reference latent
    z_T^ref per (sketch, steps, inversion switches), and the reference stream's noise predictions
    and saved query/key per step (it denoises the sketch with the empty prompt, whatever the prompt,
    seed, lambda or composition switches). Outputs are bit-identical to computing them again: the
    same calls on the same inputs. Only for a model whose weights do not change while the cache lives
    (evaluation); the reference stream is kept while its tensors fit in `max_bytes`."""

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.prompts: dict[tuple[str, str], torch.Tensor] = {}
        self.latents: dict[tuple, torch.Tensor] = {}
        self.streams: dict[tuple, dict[int, tuple[torch.Tensor, dict | None]]] = {}
        self.hits = {"prompts": 0, "inversions": 0, "reference_steps": 0}

    def get(self, kind: str, key: tuple, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The kept prompt embeddings (`kind` "prompts") or inverted latent ("inversions") of
        `key`, or `make()`'s, then kept."""
        table = self.prompts if kind == "prompts" else self.latents
        if key in table:
            self.hits[kind] += 1
            return table[key]
        table[key] = value = make()
        return value

    @staticmethod
    def inversion_key(image: Image.Image, cfg: SamplerConfig, seed: int) -> tuple:
        """What z_T^ref depends on: the sketch's pixels, the step count and the inversion switches."""
        f = cfg.faithful
        return (
            (image.mode, image.size, hashlib.sha256(image.tobytes()).hexdigest()),
            cfg.num_inference_steps,
            f.input_range_01,
            f.posterior_sample_avg,
            seed if f.posterior_sample_avg else None,  # the posterior samples are seeded
            f.inversion_model_timestep,
        )

    @staticmethod
    def stream_key(inversion_key: tuple, timesteps, plan, cfg: SamplerConfig) -> tuple:
        """What the reference stream's steps depend on (`plan`: the call's `denoise.Schedule`)."""
        return (
            inversion_key,
            tuple(int(t) for t in timesteps),
            plan.n,
            plan.decay,
            plan.ref_until,
            plan.reference_cfg_pass,
            cfg.guidance_scale if plan.reference_cfg_pass else None,
            cfg.faithful.reference_video,
            cfg.batch_streams,
        )

    def reference_step(self, key: tuple, i: int, compose: bool) -> tuple[torch.Tensor, dict | None] | None:
        """The kept (noise, saved query/key) of step i, or None where none was kept (or the call
        composes and the kept step saved nothing)."""
        kept = self.streams.get(key, {}).get(i)
        if kept is None or (kept[1] is None and compose):
            return None
        self.hits["reference_steps"] += 1
        return kept

    def keep_step(self, key: tuple, i: int, eps: torch.Tensor, store: dict | None) -> None:
        size = eps.numel() * eps.element_size()
        size += sum(t.numel() * t.element_size() for t in (store or {}).values())
        if self.bytes + size > self.max_bytes:
            return
        self.bytes += size
        self.streams.setdefault(key, {})[i] = (eps, store)
