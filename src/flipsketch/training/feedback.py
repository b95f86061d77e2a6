"""What a training run says while it runs: one line per `log_every_n_steps` with the step, the loss,
the learning rate, the time per step and an ETA (when the progress bar is off, e.g. in a log file or
`trainer.enable_progress_bar=false`), the validation loss after each validation, and where the
checkpoints go. Dataset building and latent caching announce themselves in the DataModule."""

from __future__ import annotations

import logging
import time

import pytorch_lightning as pl

log = logging.getLogger("flipsketch.train")


def say(msg: str) -> None:
    """A progress line: to the run's log (console + <run>/train.log under Hydra) or to stderr."""
    if log.isEnabledFor(logging.INFO) and (logging.getLogger().handlers or log.handlers):
        log.info(msg)
    else:
        import sys

        print(msg, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class ProgressLines(pl.Callback):
    """Loss lines every `every_n_steps` optimizer steps (null: trainer.log_every_n_steps).
    always: print them even when Lightning's progress bar is on (it shows the loss itself)."""

    def __init__(self, every_n_steps: int | None = None, always: bool = False):
        self.every_n_steps, self.always = every_n_steps, always
        self._t0 = self._step0 = None
        self._last = -1

    def _active(self, trainer) -> bool:
        return self.always or trainer.progress_bar_callback is None

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        self._t0, self._step0 = time.perf_counter(), trainer.global_step
        params = sum(p.numel() for p in getattr(pl_module, "lora_params", lambda: [])())
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else "?"
        start = f", resuming at step {trainer.global_step}" if trainer.global_step else ""
        where = []
        for cb in trainer.checkpoint_callbacks:
            every = getattr(cb, "_every_n_train_steps", 0)
            interval = getattr(cb, "_train_time_interval", None)
            if every:
                where.append(f"every {every} steps")
            if interval is not None:
                where.append(f"every {_duration(interval.total_seconds())}")
        ckpt = ""
        if trainer.checkpoint_callbacks:
            ckpt = f"; checkpoints {' and '.join(where) or 'at the end'} in {trainer.checkpoint_callbacks[0].dirpath}"
        say(f"training: {params:,} LoRA parameters, {total} steps{start}{ckpt}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not trainer.is_global_zero or not self._active(trainer) or self._t0 is None:
            return
        step = trainer.global_step
        every = self.every_n_steps or trainer.log_every_n_steps or 50
        if step == self._last or (step % every and step != 1 and step != trainer.max_steps):
            return
        self._last = step
        metrics = trainer.callback_metrics
        parts = [
            f"step {step}" + (f"/{trainer.max_steps}" if trainer.max_steps and trainer.max_steps > 0 else "")
        ]
        if "train/loss" in metrics:
            parts.append(f"loss {float(metrics['train/loss']):.4g}")
        if "train/lr" in metrics:
            parts.append(f"lr {float(metrics['train/lr']):.3g}")
        done = step - self._step0
        if done > 0:
            per = (time.perf_counter() - self._t0) / done
            parts.append(f"{per:.2f} s/step")
            if trainer.max_steps and trainer.max_steps > 0:
                parts.append(f"ETA {_duration(per * max(0, trainer.max_steps - step))}")
        say("  ".join(parts))

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        val = trainer.callback_metrics.get("val/loss")
        if val is not None:
            say(f"step {trainer.global_step}: val/loss {float(val):.4g}")
