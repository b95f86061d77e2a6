"""Live-Sketch (vector sketch animation by score distillation, 30+ minutes per sketch): its outputs
are folders of per-frame SVGs, rasterised here with data_gen's safe SVG reader and cairo renderer.

Per benchmark item: `<outputs>/<item>/seed<S>/` or `<outputs>/<item>/`, holding `frame000.svg,
frame001.svg, ...` directly or a Live-Sketch run folder (`svg_logs/svg_step<N>/`, the last step is
used). `names` maps an item id to the folder name when they differ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import Baseline, fit_frames, register_baseline


@register_baseline("live_sketch")
class LiveSketchBaseline(Baseline):
    def __init__(
        self,
        outputs: str | None = None,
        names: dict | None = None,
        label: str | None = "Live-Sketch",
        stroke_width: float | None = None,
        **base,
    ):
        super().__init__(label=label, **base)
        key = f"baseline.{self.name}.outputs"
        if outputs in (None, ""):
            raise UserError(
                f"{self.label}: set {key}=DIR (folders of frame000.svg, frame001.svg, ... per item)"
            )
        self.outputs = Path(str(outputs)).expanduser()
        if not self.outputs.is_dir():
            raise UserError(f"{self.label}: outputs folder not found: {self.outputs} (set {key}=DIR)")
        self.names = {str(k): str(v) for k, v in (names or {}).items()}
        self.stroke_width = stroke_width

    def settings(self) -> dict:
        return {
            **super().settings(),
            "outputs": str(self.outputs),
            "names": self.names,
            "stroke_width": self.stroke_width,
        }

    def frame_files(self, item_id: str, seed: int) -> list[Path]:
        from data_gen.sources import AnimationInput, animation_sources

        name = self.names.get(item_id, item_id)
        for folder in (self.outputs / name / f"seed{seed}", self.outputs / name):
            if folder.is_dir():
                try:
                    sources, _ = animation_sources(AnimationInput(folder, caption="-"))
                except UserError:
                    continue
                if len(sources) == 1:
                    return list(sources[0].frames)
        raise UserError(
            f"{self.label}: no SVG frames for item {item_id!r} under {self.outputs / name} "
            f"(expected frame000.svg, ... or svg_logs/svg_step<N>/; map ids with baseline.{self.name}.names)"
        )

    def generate(self, image, prompt, num_frames, size, steps, guidance, seed, item=None) -> np.ndarray:
        from data_gen.raster import make_renderer
        from data_gen.svg_io import SvgError, read_svg_file

        files = self.frame_files(str(getattr(item, "id", "item")), seed)
        if self.num_frames:  # resample to a fixed count; None keeps every frame Live-Sketch wrote
            files = [files[i] for i in np.round(np.linspace(0, len(files) - 1, self.num_frames)).astype(int)]
        render = make_renderer("cairo", int(size), self.stroke_width)
        frames = []
        for f in files:
            try:
                frames.append(render(read_svg_file(f, root=self.outputs)))
            except SvgError as exc:
                raise UserError(f"{self.label}: cannot use {f}: {exc}") from None
        return fit_frames(np.stack(frames), size)
