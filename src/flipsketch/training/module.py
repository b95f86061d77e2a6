"""LoRA fine-tuning of a text-to-video UNet3D on sketch clips (docs/METHOD.md section 1).

The module receives built `Components` (frozen tokenizer, text encoder, VAE, UNet3D, scheduler),
puts rank-r LoRA on the UNet (attention projections by default; `lora.targets` picks another set)
and optionally on the text encoder, and trains only those weights with the epsilon MSE loss:
DDPM noise from the model's own scheduler config, uniform timesteps, optional offset noise.

Every random draw of a step is seeded from (seed, the batch's stream sample id), so a run resumed
from a checkpoint gives bit-identical LoRA weights to one that was never interrupted. Checkpoints
hold the LoRA tensors and the optimizer state only (megabytes, not the 1.4B-parameter base).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ..config import HALF_TRUE, MIXED_PRECISIONS, LoraSettings
from ..errors import UserError
from ..models.activation_checkpointing import enable_block_checkpointing
from ..models.components import Components
from ..models.encode import encode_images, encode_prompt
from ..models.loaders import resolve_dtype
from ..models.lora import add_lora, lora_parameters
from .rng import DROPOUT, LATENT, NOISE, VAL_NOISE, mix_seed, torch_generator

CKPT_KEY = "flipsketch"


def default_lora() -> dict:
    """The LoRA shape's defaults (flipsketch.config.LoraSettings, written once)."""
    return asdict(LoraSettings())


class LoRAVideoModule(pl.LightningModule):
    def __init__(
        self,
        components: Components,
        optimizer: Callable[..., torch.optim.Optimizer],
        lr_scheduler: Callable | None = None,
        lora: dict | None = None,
        noise_offset: float = 0.0,
        caption_dropout: float = 0.0,
        activation_checkpointing: bool = False,
        frozen_dtype: str | None = None,
        latent_mode: str = "sample",
        seed: int = 0,
        model_config: dict | None = None,
    ):
        super().__init__()
        self.components = components
        self.unet, self.text_encoder, self.vae = components.unet, components.text_encoder, components.vae
        self.tokenizer = components.tokenizer
        self.optimizer_factory, self.lr_scheduler_factory = optimizer, lr_scheduler
        self.lora_config = {**default_lora(), **dict(lora or {})}
        self.noise_offset, self.caption_dropout = float(noise_offset), float(caption_dropout)
        self.latent_mode, self.seed = latent_mode, int(seed)
        self.model_config = model_config
        self.frozen_dtype = None if frozen_dtype in (None, "float32", "fp32") else resolve_dtype(frozen_dtype)
        self.strict_loading = False  # checkpoints hold the LoRA weights only
        self._setup_lora()
        if self.frozen_dtype is not None:
            self._cast_frozen(self.frozen_dtype)
        self.activation_checkpointing = bool(activation_checkpointing)
        if self.activation_checkpointing:
            enable_block_checkpointing(self.unet)
        from diffusers import DDPMScheduler

        self.noise_scheduler = DDPMScheduler.from_config(components.scheduler.config)

    # ------------------------------------------------------------------ setup
    def _setup_lora(self) -> None:
        components_frozen = [self.unet, self.text_encoder, self.vae]
        for m in components_frozen:
            m.requires_grad_(False)
        c = self.lora_config
        targets = c["targets"] if isinstance(c["targets"], str) else list(c["targets"])
        self.unet_lora_targets = add_lora(self.unet, int(c["rank"]), c["alpha"], targets, float(c["dropout"]))
        self.text_encoder_lora_targets: list[str] = []
        if c["text_encoder"]:
            rank = int(c["text_encoder_rank"] or c["rank"])
            self.text_encoder_lora_targets = add_lora(
                self.text_encoder, rank, c["alpha"], "text_encoder", float(c["dropout"])
            )
        for p in self.lora_params():
            p.data = p.data.float()
            p.requires_grad_(True)
        self._trainable = {n for n, p in self.named_parameters() if p.requires_grad}

    def _cast_frozen(self, dtype: torch.dtype) -> None:
        """Frozen base weights in half precision (memory); LoRA weights stay fp32."""
        for module in (self.unet, self.text_encoder, self.vae):
            for name, p in module.named_parameters():
                if "lora_" not in name:
                    p.data = p.data.to(dtype)

    def lora_params(self) -> list[torch.nn.Parameter]:
        return lora_parameters(self.unet) + lora_parameters(self.text_encoder)

    def setup(self, stage: str) -> None:
        precision = str(getattr(self.trainer, "precision", "32-true"))
        if precision in HALF_TRUE:
            raise UserError(
                f"trainer.precision={precision} would cast the LoRA weights; use {' or '.join(MIXED_PRECISIONS)}"
            )
        if self.frozen_dtype is not None and "mixed" not in precision:
            raise UserError(
                f"module.frozen_dtype needs a mixed precision ({'/'.join(MIXED_PRECISIONS)}), got {precision}"
            )

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # frozen: never in train mode
        if not self.text_encoder_lora_targets:
            self.text_encoder.eval()
        return self

    # ------------------------------------------------------------------ pieces of a step
    def encode_prompt(self, captions: list[str]) -> torch.Tensor:
        with torch.set_grad_enabled(bool(self.text_encoder_lora_targets) and torch.is_grad_enabled()):
            return encode_prompt(self.tokenizer, self.text_encoder, captions, self.device)

    def batch_latents(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        """(B, 4, F, h, w) scaled latents: cached ones, or the VAE on the batch's pixels."""
        if "latents" in batch:
            return batch["latents"].float()
        px = batch["pixel_values"]  # (B, F, 3, H, W)
        b, f = px.shape[:2]
        sf, mode = self.components.scaling_factor, self.latent_mode
        z = encode_images(self.vae, px.flatten(0, 1), sf, mode, generator, chunk=16, dtype=torch.float32)
        return z.unflatten(0, (b, f)).permute(0, 2, 1, 3, 4).contiguous()

    def diffusion_loss(
        self, batch: dict, key: tuple[int, ...], captions: list[str] | None = None
    ) -> torch.Tensor:
        """Epsilon (or v) MSE on one batch; every random draw is seeded from `key`."""
        latents = self.batch_latents(batch, torch_generator(*key, LATENT))
        g = torch_generator(*key, NOISE)
        b = latents.shape[0]
        noise = torch.randn(latents.shape, generator=g, dtype=torch.float32)
        if self.noise_offset:  # offset noise: one constant per sample and channel
            noise = noise + self.noise_offset * torch.randn((b, latents.shape[1], 1, 1, 1), generator=g)
        t = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (b,), generator=g)
        if captions is None:
            captions = list(batch["caption"])
        if self.caption_dropout > 0 and self.training:
            drop = torch.rand(len(captions), generator=g) < self.caption_dropout
            captions = ["" if d else c for c, d in zip(captions, drop.tolist(), strict=True)]
        noise, t = noise.to(latents.device), t.to(latents.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, t)
        emb = self.encode_prompt(captions)
        pred = self.unet(noisy.to(emb.dtype), t, encoder_hidden_states=emb).sample
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, t)
        else:
            target = noise
        return F.mse_loss(pred.float(), target.float())

    # ------------------------------------------------------------------ Lightning hooks
    def on_fit_start(self) -> None:
        self.train()  # built frozen (eval); LoRA dropout needs the UNet in train mode

    def on_train_start(self) -> None:
        """A resumed run: the optimizer's learning rate is the schedule's at the resumed step (the
        checkpoint holds the lr of the step it ended on, e.g. 0 at the end of a decay that this
        run's longer max_steps continues), the loggers' step is the optimizer step, and the CSV log
        drops the rows it will log again."""
        from torch.optim.lr_scheduler import LambdaLR

        for conf in self.trainer.lr_scheduler_configs:
            sched = conf.scheduler
            if isinstance(sched, LambdaLR) and sched.last_epoch > 0:
                lrs = [
                    base * fn(sched.last_epoch)
                    for base, fn in zip(sched.base_lrs, sched.lr_lambdas, strict=True)
                ]
                for group, lr in zip(sched.optimizer.param_groups, lrs, strict=True):
                    group["lr"] = lr
                sched._last_lr = lrs
        if self.trainer.global_step > 0:
            # the loggers' step: Lightning counts one too many when resuming from a checkpoint saved
            # at the end of a fit (last.ckpt), so a resumed run's rows would skip one step
            # (set at the first batch: the epoch loop adds its one after this hook)
            self._resumed_at = self.trainer.global_step
            for logger in self.trainer.loggers:
                if hasattr(logger, "resume_at"):
                    logger.resume_at(self.trainer.global_step)

    def on_train_end(self) -> None:
        """W&B's summary: the run's step count (Lightning's last logged step is one short of it)."""
        for logger in self.trainer.loggers:
            if type(logger).__name__ == "WandbLogger" and self.trainer.is_global_zero:
                logger.experiment.summary["trainer/global_step"] = self.trainer.global_step
                logger.experiment.summary["global_step"] = self.trainer.global_step

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        if getattr(self, "_resumed_at", None) is not None:
            loop = self.trainer.fit_loop.epoch_loop
            if getattr(loop, "_batches_that_stepped", None) is not None:
                loop._batches_that_stepped = self._resumed_at
            self._resumed_at = None
        torch.manual_seed(mix_seed(self.seed, DROPOUT, int(batch["sample"][0])))  # LoRA dropout

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.diffusion_loss(batch, (self.seed, int(batch["sample"][0])))
        n = len(batch["caption"])
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/lr", self.optimizers(use_pl_optimizer=False).param_groups[0]["lr"], batch_size=n)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """Fixed noise and timesteps per val clip, so val/loss is comparable across steps."""
        losses = [
            self.diffusion_loss(
                {k: v[i : i + 1] for k, v in batch.items() if torch.is_tensor(v)},
                (self.seed, VAL_NOISE, int(idx)),
                [cap],
            )
            for i, (idx, cap) in enumerate(zip(batch["index"].tolist(), batch["caption"], strict=True))
        ]
        loss = torch.stack(losses).mean()
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(losses))
        return loss

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.lora_params())
        if self.lr_scheduler_factory is None:
            return optimizer
        kwargs = {}
        if getattr(self.lr_scheduler_factory, "keywords", {}).get("total_steps", 0) is None:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = self.lr_scheduler_factory(optimizer, **kwargs)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    # ------------------------------------------------------------------ small checkpoints
    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if k in self._trainable}

    def lora_metadata(self) -> dict:
        return {
            "lora": dict(self.lora_config),
            "unet_targets": list(self.unet_lora_targets),
            "text_encoder_targets": list(self.text_encoder_lora_targets),
            "model": self.model_config,
            "train_sources": self._train_sources(),
        }

    def _train_sources(self) -> list[dict]:
        """The sketches behind the train clips ({name, sha256}), so evaluation can warn on overlap."""
        try:
            dm = self.trainer.datamodule
        except RuntimeError:  # not attached to a Trainer
            return []
        fn = getattr(dm, "train_sources", None)
        return fn() if callable(fn) else []

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in self._trainable}
        checkpoint[CKPT_KEY] = self.lora_metadata()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("state_dict", {})
        extra = sorted(set(state) - self._trainable)
        if extra:  # only the LoRA tensors this run trains load: a base weight is never applied
            raise UserError(
                f"checkpoint tensor {extra[0]} is not a LoRA tensor of this run; refusing to resume"
            )
        missing = sorted(self._trainable - set(state))
        if missing:
            raise UserError(
                f"checkpoint lacks {len(missing)} LoRA tensors of this model (e.g. {missing[0]}): "
                "different lora.* settings or model?"
            )
        own = self.state_dict()
        for k in sorted(self._trainable):
            got = getattr(state[k], "shape", None)
            if got != own[k].shape:
                raise UserError(
                    f"checkpoint tensor {k} has shape {tuple(got or ())}, this model needs "
                    f"{tuple(own[k].shape)}: different lora.* settings or model?"
                )
