"""LoRA fine-tuning (docs/METHOD.md section 1): data, LightningModule, validation videos, export helpers.

The task itself is `flipsketch.training.task.train(cfg)`. Lightning is slow to import, so the two
classes below load on first use: importing a light submodule (run, loggers, rng) stays cheap.
"""

from __future__ import annotations

__all__ = ["LoRAVideoModule", "SketchClipDataModule"]


def __getattr__(name: str):
    if name == "SketchClipDataModule":
        from .datamodule import SketchClipDataModule

        return SketchClipDataModule
    if name == "LoRAVideoModule":
        from .module import LoRAVideoModule

        return LoRAVideoModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
