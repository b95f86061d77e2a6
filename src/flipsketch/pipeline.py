"""The FlipSketch sampling pipeline: sketch + prompt -> animation frames.

Example:
    >>> from flipsketch.models import build_model
    >>> from flipsketch.pipeline import FlipSketchPipeline
    >>> pipe = FlipSketchPipeline(build_model("tiny"))
    >>> out = pipe("sketch.png", "a cat jumping", seeds=[0, 1], num_inference_steps=4)
    >>> out.frames.shape  # (samples, frames, H, W, 3) uint8
    (2, 10, 64, 64, 3)

`__call__` reads as numbered steps (docs/METHOD.md): check inputs, encode the prompts, invert the
sketch to the reference latent z_T^ref, prepare the latents (frame 0 of every sample is z_T^ref,
also of latents a caller passes), plan the schedule, denoise, decode. The denoising loop (step 6:
alignment, both streams through the UNet, DDIM steps) is `flipsketch.denoise`.

The reference stream runs while i <= tau2 (composition needs its query/key) and while i < tau1
(alignment's target is its current frame 0, so it must keep stepping even after composition ends:
there its layers attend plainly, "off"). With ``sampler.output_reference_frame0`` it keeps stepping
to the last step (one frame) and its frame 0 replaces the main stream's frame 0 in the output.
Ours: copies of its stepped frame 0; with ``sampler.faithful.reference_video`` the authors' evolving
video, sliced to its first frames. Where both streams have the same frame count (step 0; every
step with ``reference_decay`` false) and ``sampler.batch_streams`` is on they share one UNet call.
tau1/tau2 null (the default) are the paper's 10 and 15 of 25 steps scaled to the step count
(`SamplerConfig.resolved_taus`). The composition processors are installed for the duration of a
call only (`FlipSketchPipeline.composition`), so the UNet is left as the caller gave it.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .attention import CompositionController, install_composition, layer_kind
from .config import SamplerConfig
from .denoise import Denoiser, ReferenceStep, Schedule
from .errors import UserError
from .inversion import ddim_invert
from .models.components import Components
from .models.encode import encode_images, encode_prompt
from .models.fixed_dtype import fixed_dtype
from .progress import CallCounter, Progress
from .sketch import image_to_tensor, load_sketch
from .sketch_cache import SketchCache

__all__ = ["FlipSketchOutput", "FlipSketchPipeline", "ReferenceStep", "Schedule", "SketchCache"]


@dataclass
class FlipSketchOutput:
    frames: np.ndarray  # (samples, F, H, W, 3) uint8
    seeds: list[int]
    latents: torch.Tensor  # final latents (samples, 4, F, h, w)
    reference_latent: torch.Tensor | None  # z_T^ref (1, 4, 1, h, w)
    # the reference stream's frame 0 where it stopped stepping (after the last step with
    # sampler.output_reference_frame0), (1, 4, 1, h, w); None for plain text-to-video
    sketch: Image.Image | None
    stats: dict = field(default_factory=dict)
    reference_stream_latent: torch.Tensor | None = None


def call_config(config: SamplerConfig, num_frames, num_inference_steps, guidance_scale) -> SamplerConfig:
    """A copy of `config` with a call's arguments applied (the caller's object is never changed)."""
    cfg = copy.deepcopy(config)
    if num_frames is not None:
        cfg.num_frames = num_frames
    if num_inference_steps is not None:
        cfg.num_inference_steps = num_inference_steps
    if guidance_scale is not None:
        cfg.guidance_scale = guidance_scale
    cfg.validate()
    return cfg


def check_sketch_and_latents(sketch, latents: torch.Tensor | None, cfg: SamplerConfig, want: tuple) -> None:
    """A sketch unless plain text-to-video; the caller's starting latents of shape `want`."""
    if cfg.reference_frame and sketch is None:
        raise UserError("a sketch is required (or set sampler.reference_frame=false for plain text-to-video)")
    if latents is not None and tuple(latents.shape) != want:
        raise UserError(
            f"latents must have shape {want} (one sample per seed, num_frames={cfg.num_frames}), "
            f"got {tuple(latents.shape)}"
        )


def check_inputs(prompt: str, seeds: Sequence[int], cfg: SamplerConfig) -> None:
    """A sampling call's own inputs, one line each (the settings' check is `cfg.validate`)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise UserError("prompt is empty: describe the motion, e.g. prompt='a cat jumping'")
    if not seeds:
        raise UserError("seeds is empty: give at least one seed, e.g. seeds=[0]")
    if any((not isinstance(s, int | np.integer)) or s < 0 for s in seeds):
        raise UserError(f"seeds must be non-negative integers, got {list(seeds)}")
    cfg.validate()


def sketch_image(sketch, resolution: int, squash_aspect: bool) -> Image.Image:
    """The sketch (a path or an image) as a `resolution`-square image."""
    image = sketch if isinstance(sketch, Image.Image) else load_sketch(sketch, resolution, squash_aspect)
    if image.size != (resolution, resolution):
        image = image.convert("RGB").resize((resolution,) * 2, Image.Resampling.LANCZOS)
    return image


class FlipSketchPipeline:
    def __init__(
        self,
        components: Components,
        config: SamplerConfig | None = None,
        device=None,
        reuse: bool = False,
        lean_calls: bool = True,
    ):
        self.c = components
        # lean_calls: the UNet's dtype read once per call (models.fixed_dtype), one-frame self-attention
        # returns its value (softmax weight 1); bit-identical to lean_calls=False (tests/test_speed.py)
        self.lean_calls = lean_calls
        # reuse=True: SketchCache (evaluation: many seeds and methods of one sketch, frozen weights)
        self.cache = SketchCache() if reuse else None
        self.config = config or SamplerConfig()
        self.config.validate()
        self.device = torch.device(device) if device else next(components.unet.parameters()).device
        self.dtype = next(components.unet.parameters()).dtype
        self.controller = CompositionController(single_token_shortcut=lean_calls)
        # {processor name: "spatial" | "temporal"}: the self-attention layers a call composes
        self.composed_layers = {
            name: kind for name in components.unet.attn_processors if (kind := layer_kind(name)) is not None
        }
        self._installed = 0  # nesting depth of `composition()`

    @contextmanager
    def composition(self, cfg: SamplerConfig | None = None) -> Iterator[CompositionController]:
        """The composition processors on the UNet's self-attention layers for the duration of the
        block (re-entrant), the processors it had before put back after; the controller set from
        `cfg` (lambda, C^S/C^T switches) and left in "off" mode."""
        ctl = self.controller
        if cfg is not None:
            ctl.lambda_, ctl.lambda_denominator = cfg.lambda_, cfg.lambda_denominator
            ctl.lambda_mode = cfg.lambda_mode
            ctl.spatial, ctl.temporal = cfg.compose_spatial, cfg.compose_temporal
        unet = self.c.unet
        saved = unet.attn_processors if self._installed == 0 else None
        if saved is not None:
            install_composition(unet, ctl, saved)
        # the outermost block reads the UNet's dtype once, not walked for on every forward
        with fixed_dtype(unet) if saved is not None and self.lean_calls else nullcontext():
            self._installed += 1
            try:
                yield ctl
            finally:
                self._installed -= 1
                ctl.set_mode("off")
                if saved is not None:
                    ctl.store.clear()
                    unet.set_attn_processor(saved)

    # ------------------------------------------------------------------ inputs
    def encode_prompt(self, prompts: Sequence[str]) -> torch.Tensor:
        with torch.no_grad():
            emb = encode_prompt(self.c.tokenizer, self.c.text_encoder, prompts)
        return emb.to(self.device, self.dtype)

    # ------------------------------------------------------------------ reference
    def encode_sketch(self, image: Image.Image, cfg: SamplerConfig, seed: int) -> torch.Tensor:
        """VAE latent of the sketch, (1, 4, n, h, w): n = 1 (posterior mean) or 5 (faithful samples)."""
        x = image_to_tensor(image, range01=cfg.faithful.input_range_01)
        if cfg.faithful.posterior_sample_avg:  # 5 posterior samples, seeded on the VAE's device
            gen = torch.Generator(device=self.vae_device).manual_seed(seed)
            z = encode_images(self.c.vae, x.expand(5, -1, -1, -1), self.c.scaling_factor, "dist_sample", gen)
        else:
            z = encode_images(self.c.vae, x, self.c.scaling_factor)
        return z.permute(1, 0, 2, 3).unsqueeze(0).to(self.device, self.dtype)  # (1, 4, n, h, w)

    def invert(self, z0: torch.Tensor, empty_emb: torch.Tensor, cfg: SamplerConfig) -> torch.Tensor:
        unet = self.c.unet

        def eps_fn(z, t):
            with torch.no_grad():
                return unet(z, t, encoder_hidden_states=empty_emb).sample

        steps, model_timestep = cfg.num_inference_steps, cfg.faithful.inversion_model_timestep
        with self.composition():  # "off": plain attention, through the same processors as sampling
            zt = ddim_invert(eps_fn, z0, self.c.scheduler.config, steps, model_timestep)
        return zt.mean(dim=2, keepdim=True)  # average the faithful 5 samples (no-op for 1)

    def prepare_latents(
        self, ref_noise: torch.Tensor | None, seeds: Sequence[int], num_frames: int
    ) -> torch.Tensor:
        """Frame 0 = z_T^ref for every sample; frames 1.. from one seeded CPU generator per sample."""
        h = w = self.c.latent_size
        out = []
        for s in seeds:
            g = torch.Generator(device="cpu").manual_seed(int(s))
            out.append(torch.randn((1, 4, num_frames, h, w), generator=g, dtype=torch.float32))
        latents = torch.cat(out).to(self.device, self.dtype)
        if ref_noise is not None:
            latents[:, :, :1] = ref_noise.to(self.dtype)
        return latents

    def decode_latents(self, latents: torch.Tensor, chunk: int = 8) -> np.ndarray:
        b, c, f, h, w = latents.shape
        z = (latents / self.c.scaling_factor).permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        z = z.to(self.vae_device, self.vae_dtype)
        imgs = []
        with torch.no_grad():
            for k in range(0, z.shape[0], max(1, chunk)):
                imgs.append(self.c.vae.decode(z[k : k + chunk]).sample.float().cpu())
        x = torch.cat(imgs).clamp(-1, 1).add(1).div(2)
        x = x.reshape(b, f, 3, x.shape[-2], x.shape[-1]).permute(0, 1, 3, 4, 2).numpy()
        return (x * 255.0 + 0.5).astype(np.uint8)

    @property
    def vae_dtype(self) -> torch.dtype:
        return next(self.c.vae.parameters()).dtype

    @property
    def vae_device(self) -> torch.device:
        return next(self.c.vae.parameters()).device

    # ------------------------------------------------------------------ sampling
    def __call__(
        self,
        sketch: str | os.PathLike | Image.Image | None,
        prompt: str,
        seeds: Sequence[int] = (0,),
        num_frames: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        config: SamplerConfig | None = None,
        latents: torch.Tensor | None = None,
        progress: bool = False,
        output_type: str = "np",
        measure_alignment: bool = False,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> FlipSketchOutput:
        """Sample one animation per seed.

        latents: optional starting latents (len(seeds), 4, num_frames, h, w) instead of the seeded
        noise; their frame 0 is replaced by the inverted reference latent, as the authors mask it in
        (plain text-to-video keeps them whole). The seeds then only label the samples (and seed the
        faithful posterior sample).
        on_progress(fraction, label): called as the denoising loop advances (fraction of its work
        done, in [0, 1]; label e.g. "step 3/10: aligning 2/5 (loss 0.012)"), e.g. for a web page."""
        # 1. Check inputs
        cfg = call_config(config or self.config, num_frames, num_inference_steps, guidance_scale)
        seeds = [int(s) for s in seeds]
        check_inputs(prompt, seeds, cfg)
        size = self.c.latent_size
        check_sketch_and_latents(sketch, latents, cfg, (len(seeds), 4, cfg.num_frames, size, size))
        t0 = time.perf_counter()
        # every UNet call counted (measure_alignment adds one, at the last align step)
        counter = CallCounter(self.c.unet)
        stats: dict = {"align_losses": [], "batched_steps": 0}
        self.controller.reset_counters()
        bar = None
        try:
            with self.composition(cfg):
                # 2. Encode the prompts: the empty one, the prompt and the main stream's batch
                empty_emb, cond_emb, main_emb = self._prompt_embeddings(cfg, prompt, len(seeds))
                # 3. Invert the sketch to the reference latent z_T^ref
                image, ref, inversion_key = self._invert_sketch(sketch, empty_emb, cfg, seeds[0])
                calls_after_inversion = counter.calls
                reference_latent = None if ref is None else ref.clone()
                # 4. Prepare the latents: frame 0 is z_T^ref, frames 1.. seeded noise (or the caller's)
                latents = self._starting_latents(latents, ref, seeds, cfg.num_frames)
                # 5. Plan the timesteps and what runs at each step
                sched, plan = self._timesteps(cfg)
                bar = Progress(progress, cfg, len(seeds), plan, on_progress)
                # 6. Denoise both streams (flipsketch.denoise)
                keep = ref is not None and self.cache is not None  # the reference stream's steps
                key = SketchCache.stream_key(inversion_key, sched.timesteps, plan, cfg) if keep else None
                embs = (empty_emb, cond_emb, main_emb)
                denoiser = Denoiser(
                    self.c.unet, self.controller, sched, plan, cfg, *embs, bar, stats, self.cache, key
                )
                latents, ref = denoiser.run(latents, ref, measure_alignment)
                bar.close()
        finally:
            counter.close()
            if bar is not None:
                bar.close()

        # 7. Decode: frame 0 from the reference stream if asked
        if cfg.output_reference_frame0 and ref is not None:
            latents = latents.clone()
            latents[:, :, :1] = ref.to(latents.dtype)
        frames = self.decode_latents(latents, cfg.vae_decode_chunk) if output_type == "np" else None
        stats.update(
            seconds=time.perf_counter() - t0,
            unet_calls={"inversion": calls_after_inversion, "total": counter.calls},
            unet_frames=counter.frames,
            composed_calls=dict(self.controller.composes),
            saved_calls=dict(self.controller.saves),
            tau=cfg.taus_used(),  # the tau actually used
        )
        return FlipSketchOutput(
            frames=frames,
            seeds=seeds,
            latents=latents,
            reference_latent=reference_latent,
            sketch=image,
            stats=stats,
            reference_stream_latent=ref,
        )

    # ------------------------------------------------------------------ the steps of a call
    def _cached(self, kind: str, key: tuple, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        return make() if self.cache is None else self.cache.get(kind, key, make)

    def _prompt_embeddings(self, cfg: SamplerConfig, prompt: str, b: int) -> tuple[torch.Tensor, ...]:
        """Step 2: (empty, prompt x b, the main stream's batch: [negative, prompt] x b with
        guidance, else prompt x b), from one text-encoder call (or the SketchCache's)."""
        negative = cfg.negative_prompt
        emb = self._cached("prompts", (negative, prompt), lambda: self.encode_prompt([negative, "", prompt]))
        neg_emb, empty_emb, cond_emb = emb.split(1)
        cond_emb = cond_emb.expand(b, -1, -1)
        main_emb = torch.cat([neg_emb.expand(b, -1, -1), cond_emb]) if cfg.guidance_scale > 1.0 else cond_emb
        return empty_emb, cond_emb, main_emb

    def _invert_sketch(self, sketch, empty_emb: torch.Tensor, cfg: SamplerConfig, seed: int) -> tuple:
        """Step 3: (the sketch image, z_T^ref, its SketchCache key): the sketch encoded and
        DDIM-inverted (or the cached one); all None for plain text-to-video."""
        if not cfg.reference_frame:
            return None, None, None
        image = sketch_image(sketch, self.c.resolution, cfg.faithful.squash_aspect)
        key = SketchCache.inversion_key(image, cfg, seed)
        ref = self._cached(
            "inversions", key, lambda: self.invert(self.encode_sketch(image, cfg, seed), empty_emb, cfg)
        )
        return image, ref, key

    def _starting_latents(self, latents, ref, seeds: Sequence[int], num_frames: int) -> torch.Tensor:
        """Step 4: the seeded noise, or a copy of the caller's latents; frame 0 set to z_T^ref."""
        if latents is None:
            return self.prepare_latents(ref, seeds, num_frames)
        latents = latents.to(self.device, self.dtype).clone()
        if ref is not None:
            latents[:, :, :1] = ref.to(self.dtype)
        return latents

    def _timesteps(self, cfg: SamplerConfig) -> tuple[object, Schedule]:
        """Step 5: a fresh copy of the model's scheduler, its timesteps set, and their `Schedule`."""
        sched = type(self.c.scheduler).from_config(self.c.scheduler.config)
        sched.set_timesteps(cfg.num_inference_steps)
        return sched, Schedule.of(cfg, len(sched.timesteps))
