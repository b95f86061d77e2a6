"""The interface every baseline implements, and the registry configs build them from.

A baseline turns (sketch image, prompt) into uint8 frames (F, H, W, 3) at the evaluation size, so
the evaluator scores it with exactly the metrics FlipSketch gets:

    frames = baseline.generate(image, prompt, num_frames=10, size=256, steps=25, guidance=9.0, seed=0)

`conf/baseline/<name>.yaml` calls `build_baseline(name, ...)`, like `conf/model/*` calls `build_model`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from ..errors import UserError

BASELINE_REGISTRY: dict[str, Callable[..., Baseline]] = {}


def register_baseline(name: str):
    def deco(cls):
        BASELINE_REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


class Baseline(ABC):
    """A method the table compares FlipSketch against.

    `num_frames`, `steps` and `guidance` are the settings the evaluator passes to `generate`
    (None: take the FlipSketch sampler's). The output is stored raw: the evaluator's scoring policy
    (metrics.postprocess) post-processes every method alike. `text_conditioned` / `image_conditioned` say what the method sees.
    """

    name: str = "baseline"
    text_conditioned: bool = True
    image_conditioned: bool = True
    uses_flipsketch_model: bool = False  # true: shares the evaluated FlipSketch model (see setup)

    def __init__(
        self,
        label: str | None = None,
        num_frames: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
    ):
        from ..checks import as_float, as_int

        key = f"baseline.{self.name}"
        self.label = str(label or self.name)
        self.num_frames = None if num_frames is None else as_int(num_frames, f"{key}.num_frames", 2)
        self.steps = None if steps is None else as_int(steps, f"{key}.steps", 1)
        self.guidance = None if guidance is None else as_float(guidance, f"{key}.guidance", 0.0)

    def setup(self, ctx: Any) -> None:  # noqa: B027 - an optional hook
        """Called once before the first `generate` with the evaluation context (device, dtype, model)."""

    @abstractmethod
    def generate(
        self,
        image: Image.Image | None,
        prompt: str | None,
        num_frames: int,
        size: int,
        steps: int,
        guidance: float,
        seed: int,
        item: Any = None,
    ) -> np.ndarray:
        """Return uint8 frames (F, size, size, 3). `item` (id, sketch path) names precomputed outputs."""

    def settings(self) -> dict:
        """Everything that changes the output: hashed into the output folder name."""
        return {
            "name": self.name,
            "num_frames": self.num_frames,
            "steps": self.steps,
            "guidance": self.guidance,
            "binarize": False,  # frames are stored raw; the key keeps earlier sample folders' names
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r})"


def build_baseline(name: str, **kwargs) -> Baseline:
    """Build a registered baseline by name (configs: `_target_: flipsketch.baselines.build_baseline`)."""
    try:
        cls = BASELINE_REGISTRY[name]
    except KeyError:
        raise UserError(
            f"unknown baseline {name!r}; registered: {', '.join(sorted(BASELINE_REGISTRY))}"
        ) from None
    return cls(**kwargs)


def fit_frames(frames, size: int) -> np.ndarray:
    """Any frames (F, H, W[, C]) uint8 or float [0, 1] -> uint8 (F, size, size, 3).

    Non-square frames are centred on a white square first (nothing is cropped), then resized."""
    arr = np.asarray(frames)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.ndim not in (3, 4) or len(arr) == 0:
        raise ValueError(f"expected frames (F, H, W[, C]), got shape {arr.shape}")
    out = []
    for f in arr:
        img = Image.fromarray(f if f.ndim == 2 or f.shape[-1] != 1 else f[..., 0])
        if img.mode in ("RGBA", "LA"):
            bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(bg, img.convert("RGBA"))
        img = img.convert("RGB")
        if img.width != img.height:
            side = max(img.size)
            canvas = Image.new("RGB", (side, side), (255, 255, 255))
            canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
            img = canvas
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.LANCZOS)
        out.append(np.asarray(img, dtype=np.uint8))
    return np.stack(out)
