"""Ink: where a frame has strokes. Otsu's threshold (the one threshold of the project), binarisation
(FlipSketch's post-processing) and the ink mask of a frame. Binarised outputs (`outputs`), SVG
tracing (`vector`), the scoring policy and the stroke metrics all split dark from light here."""

from __future__ import annotations

import numpy as np
from PIL import Image


def otsu_threshold(img: np.ndarray) -> int:
    """Otsu's threshold t for a uint8 image: the dark class is `img < t`.

    Maximises the between-class variance over all splits. When several splits tie (e.g. an
    exactly two-valued image) the middle of the tied range is taken. A constant image gets
    t = its value (dark class empty).
    """
    hist = np.bincount(np.asarray(img, dtype=np.uint8).ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 0
    p = hist / total
    w0 = np.cumsum(p)[:-1]  # weight of the dark class {v < t} for t = 1..255
    mu = np.cumsum(p * np.arange(256))[:-1]
    mu_t = mu[-1] + 255 * p[-1]
    denom = w0 * (1.0 - w0)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.where(denom > 0, (mu_t * w0 - mu) ** 2 / denom, 0.0)
    if between.max() <= 0:
        return int(np.asarray(img).min())
    best = np.flatnonzero(between >= between.max() * (1 - 1e-12)) + 1
    return int(round((best.min() + best.max()) / 2))


def binarize(frames: np.ndarray, upscale: int = 1) -> np.ndarray:
    """Grayscale + Otsu per frame -> pure black strokes on white. frames (F, H, W[, 3]) uint8.

    `upscale` > 1 thresholds at a higher resolution first (the official code uses 1024 px) and
    returns that size."""
    out = []
    for fr in frames:
        img = Image.fromarray(fr).convert("L")
        if upscale > 1:
            img = img.resize((img.width * upscale, img.height * upscale), Image.Resampling.BICUBIC)
        g = np.asarray(img)
        out.append(np.where(g >= otsu_threshold(g), 255, 0).astype(np.uint8))
    return np.stack(out)


def ink_mask(frame: np.ndarray) -> np.ndarray:
    """(H, W) bool, True where the frame has ink: black/white frames as they are, any other frame
    (grey or colour, binarisation off) split by Otsu's threshold."""
    a = np.asarray(frame)
    g = np.asarray(Image.fromarray(a).convert("L")) if a.ndim == 3 else a.astype(np.uint8)
    values = np.unique(g)
    if len(values) <= 2 and set(values.tolist()) <= {0, 255}:
        return g == 0
    return g < otsu_threshold(g)
