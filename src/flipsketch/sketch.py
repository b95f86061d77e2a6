"""Loading a user's sketch image safely, whatever its format, size or mode."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UserError

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 20000 * 20000  # decoding is done lazily; `draft`/`reduce` keep memory low


def load_sketch(path: str | os.PathLike, resolution: int, squash: bool = False) -> Image.Image:
    """Read any PIL-readable image (extension ignored) and return a `resolution`^2 RGB image.

    Transparent pixels are composited over white; non-square images are fitted onto a white
    square (or squashed when `squash`, as the official code does). Large images are reduced while
    decoding so a 10k x 10k PNG costs little memory.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"sketch not found: {p}")
    size = p.stat().st_size
    if size == 0 or size > MAX_FILE_BYTES:
        raise UserError(f"sketch {p} has {size} bytes; expected 1 byte to {MAX_FILE_BYTES // 2**20} MiB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            img = Image.open(p)
            img.draft("RGB", (resolution * 2, resolution * 2))  # JPEG: decode at reduced scale
            factor = max(1, min(img.size) // (resolution * 2))
            if factor > 1:
                img = img.reduce(factor) if hasattr(img, "reduce") else img
            img.load()
    except (
        UnidentifiedImageError,
        OSError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        ValueError,
    ) as exc:
        raise UserError(f"cannot read sketch {p} as an image ({type(exc).__name__})") from None
    return fit_to_square(to_rgb_on_white(img), resolution, squash)


def to_rgb_on_white(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img) if img.format in ("JPEG", "TIFF", "WEBP") else img
    if img.mode in ("1", "L", "I", "I;16", "F"):
        return img.convert("L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def fit_to_square(img: Image.Image, resolution: int, squash: bool = False) -> Image.Image:
    if squash or img.width == img.height:
        return img.resize((resolution, resolution), Image.Resampling.LANCZOS)
    side = max(img.size)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return canvas.resize((resolution, resolution), Image.Resampling.LANCZOS)


def image_to_tensor(img: Image.Image, range01: bool = False):
    """(1, 3, H, W) float tensor in [-1, 1] (ours) or [0, 1] (the official code's VAE input)."""
    import torch

    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    return x if range01 else x * 2.0 - 1.0
