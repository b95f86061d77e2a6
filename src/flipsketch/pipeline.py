"""The FlipSketch sampling pipeline: sketch + prompt -> animation frames.

Example:
    >>> from flipsketch.models import build_model
    >>> from flipsketch.pipeline import FlipSketchPipeline
    >>> pipe = FlipSketchPipeline(build_model("tiny"))
    >>> out = pipe("sketch.png", "a cat jumping", seeds=[0, 1], num_inference_steps=4)
    >>> out.frames.shape  # (samples, frames, H, W, 3) uint8
    (2, 10, 64, 64, 3)

Per step i of the DDIM loop (docs/METHOD.md):
  1. i < tau1: iterative frame alignment of frames 1..N-1 against the reference frame;
  2. i <= tau2: the reference stream (a video of max(1, N - i) frames, empty prompt) runs once with
     the composition processors in ``save`` mode. Ours: copies of its stepped frame 0; with
     ``sampler.faithful.reference_video`` the authors' evolving video, sliced to its first frames;
  3. the main stream runs once with classifier-free guidance; its conditional half is composed;
  4. both streams take a DDIM step.
tau1/tau2 null (the default) are the paper's 10 and 15 of 25 steps scaled to the step count
(`SamplerConfig.resolved_taus`). The reference latent comes from DDIM inversion of the sketch and is
frame 0 of every sample, also of latents a caller passes (`latents=`). With
``sampler.output_reference_frame0`` the reference stream keeps stepping to the last step (one frame)
and its frame 0 replaces the main stream's frame 0 in the output.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .alignment import align_frames
from .attention import CompositionController, install_composition
from .config import SamplerConfig
from .errors import UserError
from .inversion import ddim_invert
from .models.components import Components
from .sketch import image_to_tensor, load_sketch


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


class _CallCounter:
    """Counts UNet forward calls (and frames processed) through a forward pre-hook."""

    def __init__(self, unet):
        self.calls = 0
        self.frames = 0
        self._h = unet.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        self.calls += 1
        self.frames += sample.shape[0] * sample.shape[2]

    def close(self):
        self._h.remove()


# An alignment iteration in forward passes of the same frames: forward + backward (about two more),
# plus the forward recomputed by activation checkpointing when it is on (measured on the tiny
# model on 2 CPU cores: about 5 with checkpointing).
ALIGN_PASS_COST = {True: 5, False: 3}


class _Progress:
    """One progress bar over a sample's denoising loop, counted in UNet frame-passes rather than
    steps: the steps i < tau1 run `align_iters` forward+backward passes each and cost many times a
    later step, so a per-step ETA is wrong by minutes. The bar names the step and the alignment
    iteration it is in (and the alignment loss)."""

    def __init__(self, enabled, cfg, b, use_cfg, align_on, tau1, ref_steps_to, ref_until):
        self.bar, self.done, self.label = None, 0, ""
        n, steps = cfg.num_frames, cfg.num_inference_steps
        per_iter = ALIGN_PASS_COST[bool(cfg.align_checkpointing)] * b * n
        self.align_units = per_iter
        total = 0
        for i in range(steps):
            if align_on and i < tau1:
                total += 1 + cfg.align_iters * per_iter  # eta_1 (the reference alone) + the iterations
            if i < ref_steps_to:
                total += (max(1, n - i) if cfg.reference_decay else n) if i < ref_until else 1
            total += (2 if use_cfg else 1) * b * n
        self.align_iters, self.total = cfg.align_iters, total
        if not enabled:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total,
            desc="flipsketch",
            leave=False,
            bar_format="{desc} {percentage:3.0f}%|{bar:20}| [{elapsed}<{remaining}]",
        )

    def step(self, i: int, steps: int) -> None:
        self.label = f"step {i + 1}/{steps}"
        if self.bar is not None:
            self.bar.set_description_str(f"flipsketch {self.label}", refresh=False)

    def align_iter(self, k: int, loss: float) -> None:
        units = self.align_units + (1 if k == 0 else 0)
        self.done += units
        if self.bar is not None:
            self.bar.set_description_str(
                f"flipsketch {self.label}: aligning {k + 1}/{self.align_iters} (loss {loss:.4g})",
                refresh=False,
            )
            self.bar.update(units)

    def advance(self, units: int) -> None:
        self.done += units
        if self.bar is not None:
            self.bar.update(units)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class FlipSketchPipeline:
    def __init__(self, components: Components, config: SamplerConfig | None = None, device=None):
        self.c = components
        self.config = config or SamplerConfig()
        self.config.validate()
        self.device = torch.device(device) if device else next(components.unet.parameters()).device
        self.dtype = next(components.unet.parameters()).dtype
        self.controller = CompositionController()
        self.composed_layers = install_composition(components.unet, self.controller)

    # ------------------------------------------------------------------ inputs
    def check_inputs(self, prompt: str, seeds: Sequence[int], cfg: SamplerConfig) -> None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise UserError("prompt is empty: describe the motion, e.g. prompt='a cat jumping'")
        if not seeds:
            raise UserError("seeds is empty: give at least one seed, e.g. seeds=[0]")
        if any((not isinstance(s, int | np.integer)) or s < 0 for s in seeds):
            raise UserError(f"seeds must be non-negative integers, got {list(seeds)}")
        cfg.validate()

    def encode_prompt(self, prompts: Sequence[str]) -> torch.Tensor:
        tok = self.c.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.c.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        te_device = next(self.c.text_encoder.parameters()).device  # may be offloaded to the CPU
        with torch.no_grad():
            emb = self.c.text_encoder(tok.input_ids.to(te_device))[0]
        return emb.to(self.device, self.dtype)

    # ------------------------------------------------------------------ reference
    def encode_sketch(self, image: Image.Image, cfg: SamplerConfig, seed: int) -> torch.Tensor:
        """VAE latent of the sketch, (1, 4, n, h, w): n = 1 (posterior mean) or 5 (faithful samples)."""
        x = image_to_tensor(image, range01=cfg.faithful.input_range_01).to(self.vae_device, self.vae_dtype)
        with torch.no_grad():
            if cfg.faithful.posterior_sample_avg:
                dist = self.c.vae.encode(x.expand(5, -1, -1, -1)).latent_dist
                gen = torch.Generator(device=self.vae_device).manual_seed(seed)
                z = dist.sample(generator=gen)
            else:
                z = self.c.vae.encode(x).latent_dist.mean
        z = z * self.c.scaling_factor
        return z.permute(1, 0, 2, 3).unsqueeze(0).to(self.device, self.dtype)  # (1, 4, n, h, w)

    def invert(self, z0: torch.Tensor, empty_emb: torch.Tensor, cfg: SamplerConfig) -> torch.Tensor:
        unet = self.c.unet

        def eps_fn(z, t):
            with torch.no_grad():
                return unet(z, t, encoder_hidden_states=empty_emb).sample

        self.controller.set_mode("off")
        zt = ddim_invert(
            eps_fn,
            z0,
            self.c.scheduler.config,
            cfg.num_inference_steps,
            cfg.faithful.inversion_model_timestep,
        )
        return zt.mean(dim=2, keepdim=True)  # average the faithful 5 samples (no-op for 1)

    def prepare_latents(
        self, ref_noise: torch.Tensor | None, seeds: Sequence[int], num_frames: int
    ) -> torch.Tensor:
        """Frame 0 = z_T^ref for every sample; frames 1.. from one seeded CPU generator per sample."""
        h = w = self.c.latent_size
        out = []
        for s in seeds:
            g = torch.Generator(device="cpu").manual_seed(int(s))
            n = torch.randn((1, 4, num_frames, h, w), generator=g, dtype=torch.float32)
            out.append(n)
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
    ) -> FlipSketchOutput:
        """Sample one animation per seed.

        latents: optional starting latents (len(seeds), 4, num_frames, h, w) instead of the seeded
        noise; their frame 0 is replaced by the inverted reference latent, as the authors mask it in
        (plain text-to-video keeps them whole). The seeds then only label the samples (and seed the
        faithful posterior sample)."""
        cfg = SamplerConfig.from_dict((config or self.config).to_dict())
        if num_frames is not None:
            cfg.num_frames = num_frames
        if num_inference_steps is not None:
            cfg.num_inference_steps = num_inference_steps
        if guidance_scale is not None:
            cfg.guidance_scale = guidance_scale
        seeds = [int(s) for s in seeds]
        self.check_inputs(prompt, seeds, cfg)
        if cfg.reference_frame and sketch is None:
            raise UserError(
                "a sketch is required (or set sampler.reference_frame=false for plain text-to-video)"
            )

        unet, ctl = self.c.unet, self.controller
        n, b = cfg.num_frames, len(seeds)
        if latents is not None:
            want = (b, 4, n, self.c.latent_size, self.c.latent_size)
            if tuple(latents.shape) != want:
                raise UserError(
                    f"latents must have shape {want} (one sample per seed, num_frames={n}), "
                    f"got {tuple(latents.shape)}"
                )
        tau1, tau2 = cfg.resolved_taus()
        use_cfg = cfg.guidance_scale > 1.0
        t0 = time.perf_counter()
        counter = _CallCounter(unet)  # counts every UNet call (measure_alignment adds one per align step)
        stats: dict = {"align_losses": [], "unet_calls": {}}
        ctl.reset_counters()
        ctl.lambda_, ctl.lambda_denominator = cfg.lambda_, cfg.lambda_denominator
        ctl.spatial, ctl.temporal = cfg.compose_spatial, cfg.compose_temporal
        try:
            emb = self.encode_prompt([cfg.negative_prompt, "", prompt])
            neg_emb, empty_emb, cond_emb = emb[0:1], emb[1:2], emb[2:3]
            main_emb = (
                torch.cat([neg_emb.expand(b, -1, -1), cond_emb.expand(b, -1, -1)])
                if use_cfg
                else cond_emb.expand(b, -1, -1)
            )

            image, ref = None, None
            if cfg.reference_frame:
                image = (
                    sketch
                    if isinstance(sketch, Image.Image)
                    else load_sketch(sketch, self.c.resolution, cfg.faithful.squash_aspect)
                )
                if image.size != (self.c.resolution, self.c.resolution):
                    image = image.convert("RGB").resize((self.c.resolution,) * 2, Image.Resampling.LANCZOS)
                z0 = self.encode_sketch(image, cfg, seeds[0])
                ref = self.invert(z0, empty_emb, cfg)
            calls_after_inversion = counter.calls
            reference_latent = None if ref is None else ref.clone()
            if latents is None:
                latents = self.prepare_latents(ref, seeds, n)
            else:  # the caller's noise for frames 1..; frame 0 is the reference, as the authors mask it in
                latents = latents.to(self.device, self.dtype).clone()
                if ref is not None:
                    latents[:, :, :1] = ref.to(self.dtype)

            sched = type(self.c.scheduler).from_config(self.c.scheduler.config)
            sched.set_timesteps(cfg.num_inference_steps)
            ref_until = 0
            if cfg.composing:
                ref_until = tau2 + 1
            align_on = cfg.reference_frame and cfg.align and cfg.align_iters > 0
            if align_on:
                ref_until = max(ref_until, tau1)
            # output_reference_frame0: after ref_until the stream keeps stepping, one frame, one call
            ref_steps_to = len(sched.timesteps) if cfg.output_reference_frame0 else ref_until
            ref_video = None  # faithful.reference_video: the authors' evolving reference video
            if ref is not None and cfg.faithful.reference_video:
                ref_video = ref.expand(-1, -1, n, -1, -1)

            steps = list(enumerate(sched.timesteps))
            bar = _Progress(
                progress,
                cfg,
                b,
                use_cfg,
                align_on,
                tau1,
                ref_steps_to if ref is not None else 0,
                ref_until,
            )
            for i, t in steps:
                bar.step(i, len(steps))
                composing_now = cfg.composing and i <= tau2
                if align_on and i < tau1:
                    ctl.set_mode("off")
                    res = align_frames(
                        unet,
                        latents,
                        ref,
                        t,
                        cond_emb.expand(b, -1, -1),
                        empty_emb,
                        iters=cfg.align_iters,
                        lr=cfg.align_lr,
                        checkpointing=cfg.align_checkpointing,
                        variable_dtype=torch.bfloat16 if cfg.faithful.align_bf16 else torch.float32,
                        drop_last_update=cfg.faithful.align_drop_last_update,
                        measure_final=measure_alignment,
                        on_iter=bar.align_iter,
                    )
                    latents = res.latents
                    stats["align_losses"].append(res.losses)
                    stats["align_final_loss"] = res.final_loss
                if ref is not None and i < ref_steps_to:
                    in_window = i < ref_until  # composition/alignment need it; after: frame 0 only
                    copies = (max(1, n - i) if cfg.reference_decay else n) if in_window else 1
                    cfg_pass = cfg.faithful.reference_cfg_pass and in_window
                    ctl.set_mode(
                        "save" if composing_now else "off",
                        num_frames=copies,
                        cond_start=0,
                        copies=copies,
                        ref_batch=2 if cfg_pass else 1,
                    )
                    video = (
                        ref.expand(-1, -1, copies, -1, -1) if ref_video is None else ref_video[:, :, :copies]
                    )
                    with torch.no_grad():
                        if cfg_pass:  # degenerate: both prompts empty
                            e2 = unet(
                                torch.cat([video] * 2),
                                t,
                                encoder_hidden_states=torch.cat([empty_emb] * 2),
                            ).sample
                            eps_ref = e2[:1] + cfg.guidance_scale * (e2[1:] - e2[:1])
                        else:
                            eps_ref = unet(video, t, encoder_hidden_states=empty_emb).sample
                    bar.advance(copies)
                    stepped = sched.step(eps_ref, t, video).prev_sample
                    if ref_video is not None:
                        ref_video = stepped  # sliced to the next step's frames at the next step
                    ref_next = stepped[:, :, :1]
                else:
                    ref_next = ref
                ctl.set_mode(
                    "compose" if composing_now else "off", num_frames=n, cond_start=b if use_cfg else 0
                )
                x = torch.cat([latents, latents]) if use_cfg else latents
                with torch.no_grad():
                    eps = unet(x, t, encoder_hidden_states=main_emb).sample
                if use_cfg:
                    eps_u, eps_c = eps.chunk(2)
                    eps = eps_u + cfg.guidance_scale * (eps_c - eps_u)
                latents = sched.step(eps, t, latents).prev_sample
                bar.advance(x.shape[0] * n)
                ref = ref_next
            bar.close()
            ctl.set_mode("off")
            ctl.store.clear()
            if cfg.output_reference_frame0 and ref is not None:
                latents = latents.clone()
                latents[:, :, :1] = ref.to(latents.dtype)
            frames = self.decode_latents(latents, cfg.vae_decode_chunk) if output_type == "np" else None
        finally:
            counter.close()
            ctl.set_mode("off")
            if "bar" in locals():
                bar.close()
        stats.update(
            seconds=time.perf_counter() - t0,
            unet_calls={"inversion": calls_after_inversion, "total": counter.calls},
            unet_frames=counter.frames,
            composed_calls=dict(ctl.composes),
            saved_calls=dict(ctl.saves),
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
