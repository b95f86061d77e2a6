"""One scoring policy for every method of a table, so that methods are compared like with like.

Every clip, whichever method made it, goes through the same steps before any metric sees it:

1. frame count: resampled to `frames` frames at round(linspace(0, T-1, frames)) (evenly spaced,
   first and last frame kept; a shorter clip repeats frames); None keeps each clip's own count;
2. post-processing: `binarize` (grey + Otsu per frame, FlipSketch's post-processing, thresholded
   at `binarize_upscale` x the size) or `grey` (grey levels, no threshold);
3. frame 0: with `include_frame0` false it is left out of S2V, T2V and Chamfer (FlipSketch's
   frame 0 is its reference frame, a near copy of the sketch); motion and flicker use every
   frame and frame-0 IoU is about frame 0 alone.

`describe()` is the sentence written in the table header; `to_dict()` goes into each metrics.json.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

POSTPROCESS = ("binarize", "grey")


def sample_indices(n: int, k: int) -> np.ndarray:
    """k frame indices of an n-frame clip: evenly spaced, first and last kept (repeats when n < k)."""
    if n < 1 or k < 1:
        raise ValueError(f"cannot sample {k} frames from a {n}-frame clip")
    return np.round(np.linspace(0, n - 1, k)).astype(np.int64)


@dataclass(frozen=True)
class ScoringPolicy:
    postprocess: str = "binarize"
    frames: int | None = None
    include_frame0: bool = True
    binarize_upscale: int = 1

    def __post_init__(self):
        from ..checks import as_bool, as_choice, as_int

        include = as_bool(self.include_frame0, "metrics.include_frame0")
        checked = {
            "postprocess": as_choice(self.postprocess, "metrics.postprocess", POSTPROCESS),
            "frames": None
            if self.frames is None
            else as_int(self.frames, "metrics.frames", 1 if include else 2),
            "include_frame0": include,
            "binarize_upscale": as_int(self.binarize_upscale, "metrics.binarize_upscale", 1, 16),
        }
        for key, value in checked.items():  # normalised (e.g. "10" -> 10): the dict written to metrics.json
            object.__setattr__(self, key, value)

    @classmethod
    def from_config(cls, node) -> ScoringPolicy:
        """From the `metrics` config node (missing keys: the library defaults above)."""
        get = node.get if hasattr(node, "get") else (lambda k, d=None: d)
        frames = get("frames", None)
        return cls(
            postprocess=get("postprocess", "binarize"),
            frames=None if frames in (None, "") else frames,
            include_frame0=get("include_frame0", True),
            binarize_upscale=get("binarize_upscale", 1),
        )

    @property
    def skip_first(self) -> bool:
        return not self.include_frame0

    def apply(self, frames) -> np.ndarray:
        """A clip (F, H, W[, C]) uint8 -> the scored clip, uint8 (N, H', W') grey or black/white."""
        from ..ink import binarize
        from ._io import gray_frames

        arr = np.asarray(frames)
        if self.frames is not None and len(arr) != self.frames:
            arr = arr[sample_indices(len(arr), int(self.frames))]
        if self.postprocess == "binarize":
            return binarize(arr, int(self.binarize_upscale))
        return gray_frames(arr)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        post = (
            "grey + Otsu binarisation"
            + (f" at {self.binarize_upscale}x size" if self.binarize_upscale > 1 else "")
            if self.postprocess == "binarize"
            else "grey levels, no binarisation"
        )
        count = (
            "each method's own frame count"
            if self.frames is None
            else f"{self.frames} frames per clip (resampled evenly, first and last kept)"
        )
        zero = "frame 0 counted in" if self.include_frame0 else "frame 0 left out of"
        return f"every method scored alike: {post}; {count}; {zero} S2V, T2V and Chamfer"
