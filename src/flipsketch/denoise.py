"""Step 6 of a sampling call, the denoising loop (docs/METHOD.md sections 3 and 4). Per step i:

  a. i < tau1: iterative frame alignment of frames 1..N-1 against the reference frame;
  b. the reference stream (a video of max(1, N - i) frames, empty prompt) and the main stream
     (classifier-free guidance, its conditional half composed while i <= tau2) run through the UNet;
     the reference stream's layers hand their query and key to the main stream's (`ReferenceStep`);
  c. both streams take a DDIM step.

`Schedule` says what runs at each step (the pipeline's module docstring says why), `Denoiser` runs
the steps: `FlipSketchPipeline.__call__` prepares everything it needs and hands it over.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .alignment import align_frames
from .config import SamplerConfig
from .progress import Progress
from .sketch_cache import SketchCache


@dataclass(frozen=True)
class Schedule:
    """What runs at each denoising step i (docs/METHOD.md; the pipeline's module docstring says why)."""

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
    def of(cls, cfg: SamplerConfig, steps: int) -> Schedule:
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


@dataclass
class Denoiser:
    """The denoising loop of one call: the UNet (its composition processors installed), the
    controller, the timesteps and their `Schedule`, the prompts' embeddings (empty (1, L, D), the
    prompt (B, L, D), the main stream's batch: [negative, prompt] x B with guidance, else the
    prompt), the progress bar and the call's stats; with a SketchCache, the reference stream's steps
    under `stream_key`."""

    unet: torch.nn.Module
    controller: object  # attention.CompositionController
    scheduler: object  # a fresh copy of the model's, its timesteps set
    plan: Schedule
    cfg: SamplerConfig
    empty_emb: torch.Tensor
    cond_emb: torch.Tensor
    main_emb: torch.Tensor
    bar: Progress
    stats: dict
    cache: SketchCache | None = None
    stream_key: tuple | None = None

    def run(
        self, latents: torch.Tensor, ref: torch.Tensor | None, measure_alignment: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the final latents, the reference stream's frame 0 where it stopped stepping) from the
        starting latents and z_T^ref (None: plain text-to-video). `measure_alignment`: one more
        forward at the last aligned step, the loss of the latents it returns."""
        plan, sched, bar = self.plan, self.scheduler, self.bar
        # faithful.reference_video: the authors' evolving reference video; ours: copies of frame 0
        video = (
            ref.expand(-1, -1, plan.n, -1, -1)
            if ref is not None and self.cfg.faithful.reference_video
            else None
        )
        for i, t in enumerate(sched.timesteps):
            bar.step(i, len(sched.timesteps))
            if plan.aligns(i):  # a. frame alignment (i < tau1)
                latents = self.align(latents, ref, t, measure_alignment and not plan.aligns(i + 1))
            reference = self.reference_step(i, ref, video)  # b. the noise predictions of both streams
            eps_ref, eps = self.predict_noise(i, t, latents, reference)
            if reference is not None:  # c. both streams take a DDIM step
                bar.advance(reference.frames)
                stepped = sched.step(eps_ref, t, reference.video).prev_sample
                if video is not None:
                    video = stepped  # sliced to the next step's frames at the next step
                ref = stepped[:, :, :1]
            latents = sched.step(eps, t, latents).prev_sample
            bar.advance((2 if plan.use_cfg else 1) * latents.shape[0] * plan.n)
        return latents, ref

    def align(self, latents: torch.Tensor, ref: torch.Tensor, t, measure: bool) -> torch.Tensor:
        """Step a: frames 1.. optimised against the reference frame; the UNet attends plainly."""
        self.controller.set_mode("off")
        cfg = self.cfg
        res = align_frames(
            self.unet,
            latents,
            ref,
            t,
            self.cond_emb,
            self.empty_emb,
            iters=cfg.align_iters,
            lr=cfg.align_lr,
            checkpointing=cfg.align_checkpointing,
            variable_dtype=torch.bfloat16 if cfg.faithful.align_bf16 else torch.float32,
            drop_last_update=cfg.faithful.align_drop_last_update,
            measure_final=measure,
            on_iter=self.bar.align_iter,
        )
        self.stats["align_losses"].append(res.losses)
        self.stats["align_final_loss"] = res.final_loss
        self.stats["measure_seconds"] = self.stats.get("measure_seconds", 0.0) + res.measure_seconds
        return res.latents

    def reference_step(
        self, i: int, ref: torch.Tensor | None, video: torch.Tensor | None
    ) -> ReferenceStep | None:
        """The reference stream's input at step i (None where it does not run): the first frames of
        its evolving `video` (faithful.reference_video), else copies of its stepped frame 0."""
        if ref is None or not self.plan.reference_runs(i):
            return None
        frames = self.plan.reference_frames(i)
        x = ref.expand(-1, -1, frames, -1, -1) if video is None else video[:, :, :frames]
        return ReferenceStep(x, self.plan.reference_entries(i), self.cfg.guidance_scale)

    def predict_noise(
        self, i: int, t, latents: torch.Tensor, reference: ReferenceStep | None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Step b: (the reference stream's noise or None, the main stream's guided noise). While
        composing (i <= tau2) the reference stream's layers hand their query/key to the main
        stream's conditional entries; otherwise every layer attends plainly ("off"). Where both
        streams have the same frame count and `batch_streams` is on they share one UNet call."""
        plan, ctl = self.plan, self.controller
        x = torch.cat([latents, latents]) if plan.use_cfg else latents
        main_cond_start = latents.shape[0] if plan.use_cfg else 0
        compose = plan.composes(i)
        batched = reference is not None and self.cfg.batch_streams and reference.frames == plan.n
        self.stats["batched_steps"] += batched
        with torch.no_grad():
            if batched:  # one call: [reference entries, main uncond, main cond]
                r = reference.entries
                video, ref_emb = reference.unet_input(self.empty_emb)
                ctl.set_mode(
                    "batched" if compose else "off",
                    num_frames=plan.n,
                    cond_start=r + main_cond_start,
                    ref_batch=r,
                    batch=r + x.shape[0],
                )
                out = self.unet(
                    torch.cat([video, x]), t, encoder_hidden_states=torch.cat([ref_emb, self.main_emb])
                ).sample
                eps_ref, eps = reference.guided(out[:r]), out[r:]
            else:
                eps_ref = self.reference_noise(i, t, reference, compose)
                ctl.set_mode("compose" if compose else "off", num_frames=plan.n, cond_start=main_cond_start)
                eps = self.unet(x, t, encoder_hidden_states=self.main_emb).sample
            ctl.set_mode("off")
        if plan.use_cfg:
            eps_u, eps_c = eps.chunk(2)
            eps = eps_u + self.cfg.guidance_scale * (eps_c - eps_u)
        return eps_ref, eps

    def reference_noise(
        self, i: int, t, reference: ReferenceStep | None, compose: bool
    ) -> torch.Tensor | None:
        """The reference stream's own UNet call (its layers save query/key while composing), or the
        SketchCache's: the same call on the same reference input before."""
        ctl = self.controller
        kept = None if self.stream_key is None else self.cache.reference_step(self.stream_key, i, compose)
        if kept is not None:
            ctl.store.clear()
            ctl.store.update(kept[1] or {})
            return kept[0]
        if reference is None:
            return None
        video, ref_emb = reference.unet_input(self.empty_emb)
        ctl.set_mode("save" if compose else "off", ref_batch=reference.entries)
        eps_ref = reference.guided(self.unet(video, t, encoder_hidden_states=ref_emb).sample)
        if self.stream_key is not None:
            self.cache.keep_step(self.stream_key, i, eps_ref, dict(ctl.store) if compose else None)
        return eps_ref
