"""Weight-free metrics on sketch frames: dark strokes on a light background.

Frames are uint8 grayscale (T, H, W) (other formats are converted, see `_io`). Distances are in
pixels, intensities on a 0-1 scale.

Conventions for frames without strokes (documented, so numbers stay finite and comparable):
* `stroke_mask` with Otsu: an image whose intensity range is below `min_contrast` has no strokes.
* `chamfer_distance`: both masks empty -> 0.0; exactly one empty -> the image diagonal
  sqrt(H^2 + W^2), the largest distance two pixels of that image can have.
* `stroke_iou`: both masks empty -> 1.0; exactly one empty -> 0.0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..ink import otsu_threshold  # the one Otsu (sampling layer): dark class is g < t
from ._io import gray_frames, gray_image


def stroke_mask(img, threshold: int | None = None, min_contrast: int = 32) -> np.ndarray:
    """Boolean stroke mask (True = dark stroke pixel) of one image (H, W) or frames (T, H, W).

    A 3-D array is frames (T, H, W); pass a single RGB image as PIL or via `gray_image` first.

    `threshold`: pixels strictly darker than it are strokes. None: Otsu per image; an image
    whose max - min intensity is below `min_contrast` (blank paper, faint noise) has no strokes.
    """
    if hasattr(img, "convert"):  # PIL image
        arr = gray_image(img)
    elif isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim in (2, 3):
        arr = img
    else:
        arr = gray_image(img) if np.ndim(img) == 2 else gray_frames(img)
    if arr.ndim == 3:
        return np.stack([stroke_mask(a, threshold, min_contrast) for a in arr])
    if threshold is not None:
        return arr < threshold
    if int(arr.max()) - int(arr.min()) < min_contrast:
        return np.zeros(arr.shape, dtype=bool)
    return arr < otsu_threshold(arr)


def _mean_distance(src: np.ndarray, dst: np.ndarray) -> float:
    """Mean over the pixels of `src` of the Euclidean distance to the nearest pixel of `dst` (both
    non-empty bool masks): an exact distance transform of every pixel to `dst`, read at `src`."""
    return float(ndimage.distance_transform_edt(~dst)[src].mean())


def chamfer_distance(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """Symmetric Chamfer distance in pixels between two (H, W) stroke masks.

    0.5 * (mean over A of the distance to the nearest pixel of B + the same from B to A), over
    every pixel of both masks (exact Euclidean distances). Empty masks: see the module docstring.
    """
    a, b = np.asarray(mask_a, dtype=bool), np.asarray(mask_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"masks must be two (H, W) arrays of one shape, got {a.shape} and {b.shape}")
    na, nb = a.any(), b.any()
    if not na and not nb:
        return 0.0
    if not (na and nb):
        return math.hypot(*a.shape)
    return 0.5 * (_mean_distance(a, b) + _mean_distance(b, a))


def _check_same_size(sketch: np.ndarray, frames: np.ndarray) -> None:
    if sketch.shape != frames.shape[1:]:
        raise ValueError(f"sketch is {sketch.shape} but frames are {frames.shape[1:]}; resize one to match")


def sketch_chamfer(sketch, frames, skip_first: bool = False, threshold: int | None = None) -> float:
    """Mean Chamfer distance (pixels) between the sketch's strokes and each frame's strokes."""
    sk, fr = stroke_mask(gray_image(sketch), threshold), stroke_mask(gray_frames(frames), threshold)
    _check_same_size(sk, fr)
    fr = fr[1:] if skip_first else fr
    if len(fr) == 0:
        raise ValueError("no frames left to score (skip_first on a one-frame clip)")
    return float(np.mean([chamfer_distance(sk, f) for f in fr]))


def motion_magnitude(frames, threshold: int | None = None) -> float:
    """Mean Chamfer distance (pixels) between consecutive frames' strokes; 0.0 for < 2 frames."""
    masks = stroke_mask(gray_frames(frames), threshold)
    if len(masks) < 2:
        return 0.0
    return float(np.mean([chamfer_distance(a, b) for a, b in zip(masks[:-1], masks[1:], strict=True)]))


def temporal_flicker(frames) -> float:
    """Mean absolute intensity change (0-1) between consecutive frames; 0.0 for < 2 frames."""
    fr = gray_frames(frames)
    if len(fr) < 2:
        return 0.0
    return float(np.abs(np.diff(fr.astype(np.float32), axis=0)).mean() / 255.0)


def dilate_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of (..., H, W) masks by a (2r+1) x (2r+1) square (Chebyshev radius r); pixels
    outside the image count as empty."""
    out = np.asarray(mask, dtype=bool)
    if radius <= 0:
        return out.copy()
    square = np.ones((1,) * (out.ndim - 2) + (2 * radius + 1,) * 2, dtype=bool)
    return ndimage.binary_dilation(out, structure=square)


def stroke_iou(mask_a: np.ndarray, mask_b: np.ndarray, dilate: int = 1) -> float:
    """Tolerant IoU of two stroke masks.

    A pixel of A counts as matched when it lies within `dilate` px (square neighbourhood) of B,
    and vice versa; intersection = mean of the two matched counts, union = |A| + |B| - it.
    Identical masks -> 1, masks farther apart than `dilate` px -> 0. Both empty -> 1.0.
    """
    a, b = np.asarray(mask_a, dtype=bool), np.asarray(mask_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks must have one shape, got {a.shape} and {b.shape}")
    na, nb = int(a.sum()), int(b.sum())
    if na == 0 and nb == 0:
        return 1.0
    inter = 0.5 * (int((a & dilate_mask(b, dilate)).sum()) + int((b & dilate_mask(a, dilate)).sum()))
    return float(inter / (na + nb - inter))


def ink_ratio(sketch, frames, skip_first: bool = False) -> float:
    """Median over frames of (stroke pixels of the frame) / (stroke pixels of the sketch).

    About 1 for a drawing that keeps its strokes; far above 1 for filled blobs, near 0 for a
    frame that lost its drawing. A sketch without strokes gives inf (any ink) or 1.0 (none).
    """
    sk, fr = stroke_mask(gray_image(sketch)), stroke_mask(gray_frames(frames))
    _check_same_size(sk, fr)
    fr = fr[1:] if skip_first else fr
    n = int(sk.sum())
    counts = fr.reshape(len(fr), -1).sum(1).astype(np.float64)
    if n == 0:
        return 1.0 if not counts.any() else math.inf
    return float(np.median(counts / n))


def nearest_sketch(frames, sketches, skip_first: bool = False) -> np.ndarray:
    """For each frame, the index of the sketch (of `sketches`, same size) nearest by stroke Chamfer.

    The identity test of a sketch animation: a frame that still shows its input drawing is nearer
    to that drawing than to any other candidate.
    """
    fr = stroke_mask(gray_frames(frames))
    fr = fr[1:] if skip_first else fr
    masks = [stroke_mask(gray_image(s)) for s in sketches]
    for m in masks:
        _check_same_size(m, fr)
    dist = np.array([[chamfer_distance(f, m) for m in masks] for f in fr])
    return dist.argmin(1)
