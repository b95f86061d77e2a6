"""What every method of one evaluation shares: device, dtype, the evaluated model (built once, lazily)."""

from __future__ import annotations

from omegaconf import OmegaConf


class EvalContext:
    def __init__(self, cfg, device, dtype, progress: bool = False):
        self.cfg, self.device, self.dtype, self.progress = cfg, device, dtype, bool(progress)
        self._components = None
        self._pipeline = None

    @property
    def size(self) -> int:
        return int(self.cfg.model.resolution)

    def sampler_dict(self) -> dict:
        return OmegaConf.to_container(self.cfg.sampler, resolve=True)

    def components(self):
        if self._components is None:
            from ..models.registry import build_model_from_config

            comps = build_model_from_config(self.cfg.model)
            comps.to(device=self.device, dtype=self.dtype)
            comps.eval_frozen()
            self._components = comps
        return self._components

    def pipeline(self):
        """The FlipSketch pipeline (flipsketch.api) on the evaluated model (variants and t2v_plain
        share it)."""
        if self._pipeline is None:
            from ..api import FlipSketchPipeline
            from ..config import SamplerConfig

            self._pipeline = FlipSketchPipeline.from_components(
                self.components(),
                SamplerConfig.from_dict(self.sampler_dict()),
                self.device,
                reuse=bool(self.cfg.get("reuse_sketch", True)),  # frozen weights: once per sketch
            )
            self._pipeline.set_progress_bar_config(disable=not self.progress)
        return self._pipeline

    def model_tag(self) -> str:
        """Folder name of the evaluated model: its registry name, plus the LoRA folder when one is loaded."""
        from pathlib import Path

        from .benchmark import slug

        tag = str(self.cfg.model.get("name") or "model")
        lora = self.cfg.model.get("lora")
        if lora:
            p = Path(str(lora))
            tag += "+lora-" + (p.parent.name if p.suffix else p.name)
        return slug(tag)
