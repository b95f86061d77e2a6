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
also of latents a caller passes), plan the schedule, denoise, decode. Per denoising step i:

  a. i < tau1: iterative frame alignment of frames 1..N-1 against the reference frame;
  b. the reference stream (a video of max(1, N - i) frames, empty prompt) and the main stream
     (classifier-free guidance, its conditional half composed while i <= tau2) run through the UNet;
     the reference stream's layers hand their query and key to the main stream's (`ReferenceStep`);
  c. both streams take a DDIM step.

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
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .alignment import align_frames
from .attention import CompositionController, install_composition, layer_kind
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

    def __init__(
        self,
        enabled: bool,
        cfg: SamplerConfig,
        b: int,
        plan: _Schedule,
        callback: Callable[[float, str], None] | None = None,
    ):
        self.bar, self.done, self.label = None, 0, ""
        self.callback = callback  # callback(fraction done in [0, 1], "step i/N[: aligning k/K]")
        n, steps = cfg.num_frames, cfg.num_inference_steps
        per_iter = ALIGN_PASS_COST[bool(cfg.align_checkpointing)] * b * n
        self.align_units = per_iter
        total = 0
        for i in range(steps):
            if plan.aligns(i):
                total += 1 + cfg.align_iters * per_iter  # eta_1 (the reference alone) + the iterations
            if plan.reference_runs(i):
                total += plan.reference_frames(i)
            total += (2 if plan.use_cfg else 1) * b * n
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

    def _report(self, label: str) -> None:
        if self.callback is not None:
            self.callback(min(1.0, self.done / max(1, self.total)), label)

    def step(self, i: int, steps: int) -> None:
        self.label = f"step {i + 1}/{steps}"
        if self.bar is not None:
            self.bar.set_description_str(f"flipsketch {self.label}", refresh=False)
        self._report(self.label)

    def align_iter(self, k: int, loss: float) -> None:
        units = self.align_units + (1 if k == 0 else 0)
        self.done += units
        label = f"{self.label}: aligning {k + 1}/{self.align_iters} (loss {loss:.4g})"
        if self.bar is not None:
            self.bar.set_description_str(f"flipsketch {label}", refresh=False)
            self.bar.update(units)
        self._report(label)

    def advance(self, units: int) -> None:
        self.done += units
        if self.bar is not None:
            self.bar.update(units)
        self._report(self.label)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@dataclass(frozen=True)
class _Schedule:
    """What runs at each denoising step i (docs/METHOD.md; the module docstring says why)."""

    n: int  # frames of the main stream
    use_cfg: bool  # classifier-free guidance: the main stream's batch is [uncond, cond]
    tau1: int
    tau2: int
    composing: bool  # C^S or C^T on at all
    align: bool  # frame alignment on at all
    ref_until: int  # the reference stream is a video (composition, alignment) while i < ref_until
    ref_steps_to: int  # it steps while i < ref_steps_to (after ref_until: one frame, frame 0 only)
    decay: bool  # the reference video has max(1, N - i) frames, else N
    reference_cfg_pass: bool  # faithful: the degenerate two-prompt guidance pass on the reference

    @classmethod
    def of(cls, cfg: SamplerConfig, steps: int) -> _Schedule:
        tau1, tau2 = cfg.resolved_taus()
        align = cfg.reference_frame and cfg.align and cfg.align_iters > 0
        ref_until = max(tau2 + 1 if cfg.composing else 0, tau1 if align else 0)
        ref_steps_to = (steps if cfg.output_reference_frame0 else ref_until) if cfg.reference_frame else 0
        return cls(
            n=cfg.num_frames,
            use_cfg=cfg.guidance_scale > 1.0,
            tau1=tau1,
            tau2=tau2,
            composing=cfg.composing,
            align=align,
            ref_until=ref_until,
            ref_steps_to=ref_steps_to,
            decay=cfg.reference_decay,
            reference_cfg_pass=cfg.faithful.reference_cfg_pass,
        )

    def aligns(self, i: int) -> bool:
        return self.align and i < self.tau1

    def composes(self, i: int) -> bool:
        return self.composing and i <= self.tau2

    def reference_runs(self, i: int) -> bool:
        return i < self.ref_steps_to

    def reference_frames(self, i: int) -> int:
        if i >= self.ref_until:
            return 1  # output_reference_frame0 only: frame 0 keeps stepping
        return max(1, self.n - i) if self.decay else self.n

    def reference_entries(self, i: int) -> int:
        """Batch entries of the reference stream: 2 for the faithful degenerate guidance pass."""
        return 2 if self.reference_cfg_pass and i < self.ref_until else 1


@dataclass
class ReferenceStep:
    """The reference stream at one step: its UNet input and how its noise prediction is read."""

    video: torch.Tensor  # (1, 4, frames, h, w)
    entries: int  # 1, or 2 for the faithful degenerate guidance pass (both prompts empty)
    guidance_scale: float

    @property
    def frames(self) -> int:
        return self.video.shape[2]

    def unet_input(self, empty_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([self.video] * self.entries), torch.cat([empty_emb] * self.entries)

    def guided(self, eps: torch.Tensor) -> torch.Tensor:
        """The reference stream's noise from its entries' predictions."""
        if self.entries == 1:
            return eps
        return eps[:1] + self.guidance_scale * (eps[1:] - eps[:1])


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

    def keep_step(self, key: tuple, i: int, eps: torch.Tensor, store: dict | None) -> None:
        size = eps.numel() * eps.element_size()
        size += sum(t.numel() * t.element_size() for t in (store or {}).values())
        if self.bytes + size > self.max_bytes:
            return
        self.bytes += size
        self.streams.setdefault(key, {})[i] = (eps, store)


def _image_key(image: Image.Image) -> tuple:
    import hashlib

    return (image.mode, image.size, hashlib.sha256(image.tobytes()).hexdigest())


class FlipSketchPipeline:
    def __init__(
        self, components: Components, config: SamplerConfig | None = None, device=None, reuse: bool = False
    ):
        self.c = components
        # reuse=True: SketchCache (evaluation: many seeds and methods of one sketch, frozen weights)
        self.cache = SketchCache() if reuse else None
        self.config = config or SamplerConfig()
        self.config.validate()
        self.device = torch.device(device) if device else next(components.unet.parameters()).device
        self.dtype = next(components.unet.parameters()).dtype
        self.controller = CompositionController()
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
            install_composition(unet, ctl)
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

        with self.composition():  # "off": plain attention, through the same processors as sampling
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
        on_progress: Callable[[float, str], None] | None = None,
    ) -> FlipSketchOutput:
        """Sample one animation per seed.

        latents: optional starting latents (len(seeds), 4, num_frames, h, w) instead of the seeded
        noise; their frame 0 is replaced by the inverted reference latent, as the authors mask it in
        (plain text-to-video keeps them whole). The seeds then only label the samples (and seed the
        faithful posterior sample).
        on_progress(fraction, label): called as the denoising loop advances (fraction of its work
        done, in [0, 1]; label e.g. "step 3/10: aligning 2/5 (loss 0.012)"), e.g. for a web page."""
        # 1. settings and inputs
        cfg = self._call_config(config, num_frames, num_inference_steps, guidance_scale)
        seeds = [int(s) for s in seeds]
        self.check_inputs(prompt, seeds, cfg)
        if cfg.reference_frame and sketch is None:
            raise UserError(
                "a sketch is required (or set sampler.reference_frame=false for plain text-to-video)"
            )
        n, b = cfg.num_frames, len(seeds)
        if latents is not None:
            want = (b, 4, n, self.c.latent_size, self.c.latent_size)
            if tuple(latents.shape) != want:
                raise UserError(
                    f"latents must have shape {want} (one sample per seed, num_frames={n}), "
                    f"got {tuple(latents.shape)}"
                )
        t0 = time.perf_counter()
        counter = _CallCounter(
            self.c.unet
        )  # every UNet call (measure_alignment adds one, at the last align step)
        stats: dict = {"align_losses": [], "batched_steps": 0}
        self.controller.reset_counters()
        bar = None
        try:
            with self.composition(cfg):
                # 2. prompts: [negative, empty, prompt]; the main stream's batch is [uncond, cond] x b
                neg_emb, empty_emb, cond_emb = self._prompt_embeddings(cfg.negative_prompt, prompt)
                main_emb = cond_emb.expand(b, -1, -1)
                if cfg.guidance_scale > 1.0:
                    main_emb = torch.cat([neg_emb.expand(b, -1, -1), main_emb])

                # 3. the reference latent z_T^ref: the sketch encoded and DDIM-inverted
                image, ref = None, None
                if cfg.reference_frame:
                    image = self._sketch_image(sketch, cfg)
                    ref, inv_key = self._reference_latent(image, empty_emb, cfg, seeds[0])
                calls_after_inversion = counter.calls
                reference_latent = None if ref is None else ref.clone()

                # 4. starting latents: frame 0 is the reference, frames 1.. seeded noise (or the caller's)
                if latents is None:
                    latents = self.prepare_latents(ref, seeds, n)
                else:
                    latents = latents.to(self.device, self.dtype).clone()
                    if ref is not None:
                        latents[:, :, :1] = ref.to(self.dtype)

                # 5. timesteps and what runs at each step
                sched = type(self.c.scheduler).from_config(self.c.scheduler.config)
                sched.set_timesteps(cfg.num_inference_steps)
                plan = _Schedule.of(cfg, len(sched.timesteps))
                # faithful.reference_video: the authors' evolving reference video; ours: copies of frame 0
                ref_video = (
                    ref.expand(-1, -1, n, -1, -1)
                    if ref is not None and cfg.faithful.reference_video
                    else None
                )
                bar = _Progress(progress, cfg, b, plan, on_progress)
                stream_key = None  # the reference stream's steps in the SketchCache
                if ref is not None and self.cache is not None:
                    stream_key = (
                        inv_key,
                        tuple(int(t) for t in sched.timesteps),
                        n,
                        plan.decay,
                        plan.ref_until,
                        plan.reference_cfg_pass,
                        cfg.guidance_scale if plan.reference_cfg_pass else None,
                        cfg.faithful.reference_video,
                        cfg.batch_streams,
                    )

                # 6. denoising loop
                for i, t in enumerate(sched.timesteps):
                    bar.step(i, len(sched.timesteps))
                    # 6a. frame alignment (i < tau1)
                    if plan.aligns(i):
                        res = self._align(
                            latents,
                            ref,
                            t,
                            cond_emb.expand(b, -1, -1),
                            empty_emb,
                            cfg,
                            bar,
                            measure_alignment and not plan.aligns(i + 1),  # the last aligned step's
                        )
                        latents = res.latents
                        stats["align_losses"].append(res.losses)
                        stats["align_final_loss"] = res.final_loss
                        stats["measure_seconds"] = stats.get("measure_seconds", 0.0) + res.measure_seconds
                    # 6b. the noise predictions of both streams
                    reference = None
                    if ref is not None and plan.reference_runs(i):
                        frames = plan.reference_frames(i)
                        video = (
                            ref.expand(-1, -1, frames, -1, -1)
                            if ref_video is None
                            else ref_video[:, :, :frames]
                        )
                        reference = ReferenceStep(video, plan.reference_entries(i), cfg.guidance_scale)
                    eps_ref, eps, batched = self._predict_noise(
                        i, t, latents, main_emb, empty_emb, reference, plan, cfg, stream_key
                    )
                    stats["batched_steps"] += batched
                    # 6c. both streams take a DDIM step
                    if reference is not None:
                        bar.advance(reference.frames)
                        stepped = sched.step(eps_ref, t, reference.video).prev_sample
                        if ref_video is not None:
                            ref_video = stepped  # sliced to the next step's frames at the next step
                        ref_next = stepped[:, :, :1]
                    else:
                        ref_next = ref
                    latents = sched.step(eps, t, latents).prev_sample
                    bar.advance((2 if plan.use_cfg else 1) * b * n)
                    ref = ref_next
                bar.close()
        finally:
            counter.close()
            if bar is not None:
                bar.close()

        # 7. output: frame 0 from the reference stream if asked, decoded
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
    def _call_config(self, config, num_frames, num_inference_steps, guidance_scale) -> SamplerConfig:
        """A copy of the pipeline's (or the given) settings with the call's arguments applied."""
        cfg = copy.deepcopy(config or self.config)  # the caller's object is never changed
        if num_frames is not None:
            cfg.num_frames = num_frames
        if num_inference_steps is not None:
            cfg.num_inference_steps = num_inference_steps
        if guidance_scale is not None:
            cfg.guidance_scale = guidance_scale
        cfg.validate()
        return cfg

    def _prompt_embeddings(self, negative: str, prompt: str) -> tuple[torch.Tensor, ...]:
        """(negative, empty, prompt) embeddings: one text-encoder call (or the SketchCache's)."""
        key = (negative, prompt)
        if self.cache is not None and key in self.cache.prompts:
            self.cache.hits["prompts"] += 1
            return self.cache.prompts[key].split(1)
        emb = self.encode_prompt([negative, "", prompt])
        if self.cache is not None:
            self.cache.prompts[key] = emb
        return emb.split(1)

    def _reference_latent(self, image: Image.Image, empty_emb, cfg: SamplerConfig, seed: int):
        """(z_T^ref, its SketchCache key): the sketch encoded and DDIM-inverted, or the cached one."""
        f = cfg.faithful
        key = (
            _image_key(image),
            cfg.num_inference_steps,
            f.input_range_01,
            f.posterior_sample_avg,
            seed if f.posterior_sample_avg else None,  # the posterior samples are seeded
            f.inversion_model_timestep,
        )
        if self.cache is not None and key in self.cache.latents:
            self.cache.hits["inversions"] += 1
            return self.cache.latents[key], key
        ref = self.invert(self.encode_sketch(image, cfg, seed), empty_emb, cfg)
        if self.cache is not None:
            self.cache.latents[key] = ref
        return ref, key

    def _sketch_image(self, sketch, cfg: SamplerConfig) -> Image.Image:
        image = (
            sketch
            if isinstance(sketch, Image.Image)
            else load_sketch(sketch, self.c.resolution, cfg.faithful.squash_aspect)
        )
        if image.size != (self.c.resolution, self.c.resolution):
            image = image.convert("RGB").resize((self.c.resolution,) * 2, Image.Resampling.LANCZOS)
        return image

    def _align(self, latents, ref, t, cond_emb, empty_emb, cfg: SamplerConfig, bar, measure: bool):
        """Step 6a: frames 1.. optimised against the reference frame; the UNet attends plainly."""
        self.controller.set_mode("off")
        return align_frames(
            self.c.unet,
            latents,
            ref,
            t,
            cond_emb,
            empty_emb,
            iters=cfg.align_iters,
            lr=cfg.align_lr,
            checkpointing=cfg.align_checkpointing,
            variable_dtype=torch.bfloat16 if cfg.faithful.align_bf16 else torch.float32,
            drop_last_update=cfg.faithful.align_drop_last_update,
            measure_final=measure,
            on_iter=bar.align_iter,
        )

    def _predict_noise(
        self,
        i: int,
        t,
        latents: torch.Tensor,
        main_emb: torch.Tensor,
        empty_emb: torch.Tensor,
        reference: ReferenceStep | None,
        plan: _Schedule,
        cfg: SamplerConfig,
        stream_key: tuple | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor, bool]:
        """Step 6b: (the reference stream's noise or None, the main stream's guided noise, whether
        the two streams shared one UNet call). While composing (i <= tau2) the reference stream's
        layers hand their query/key to the main stream's conditional entries; otherwise every layer
        attends plainly ("off")."""
        unet, ctl = self.c.unet, self.controller
        x = torch.cat([latents, latents]) if plan.use_cfg else latents
        main_cond_start = latents.shape[0] if plan.use_cfg else 0
        compose = plan.composes(i)
        batched = reference is not None and cfg.batch_streams and reference.frames == plan.n
        with torch.no_grad():
            if batched:  # one call: [reference entries, main uncond, main cond]
                r = reference.entries
                video, ref_emb = reference.unet_input(empty_emb)
                ctl.set_mode(
                    "batched" if compose else "off",
                    num_frames=plan.n,
                    cond_start=r + main_cond_start,
                    ref_batch=r,
                    batch=r + x.shape[0],
                )
                out = unet(
                    torch.cat([video, x]), t, encoder_hidden_states=torch.cat([ref_emb, main_emb])
                ).sample
                eps_ref, eps = reference.guided(out[:r]), out[r:]
            else:
                eps_ref = None
                kept = None if stream_key is None else self.cache.streams.get(stream_key, {}).get(i)
                if kept is not None and (kept[1] is not None or not compose):
                    # the SketchCache's: the same call on the same reference input before
                    eps_ref = kept[0]
                    ctl.store.clear()
                    ctl.store.update(kept[1] or {})
                    self.cache.hits["reference_steps"] += 1
                elif reference is not None:
                    video, ref_emb = reference.unet_input(empty_emb)
                    ctl.set_mode("save" if compose else "off", ref_batch=reference.entries)
                    eps_ref = reference.guided(unet(video, t, encoder_hidden_states=ref_emb).sample)
                    if stream_key is not None:
                        self.cache.keep_step(stream_key, i, eps_ref, dict(ctl.store) if compose else None)
                ctl.set_mode("compose" if compose else "off", num_frames=plan.n, cond_start=main_cond_start)
                eps = unet(x, t, encoder_hidden_states=main_emb).sample
            ctl.set_mode("off")
        if plan.use_cfg:
            eps_u, eps_c = eps.chunk(2)
            eps = eps_u + cfg.guidance_scale * (eps_c - eps_u)
        return eps_ref, eps, batched
