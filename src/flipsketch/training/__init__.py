"""LoRA fine-tuning (docs/METHOD.md section 1): data, LightningModule, validation videos, export helpers."""

from .datamodule import SketchClipDataModule
from .module import LoRAVideoModule

__all__ = ["LoRAVideoModule", "SketchClipDataModule"]
