"""Loading a user's sketch image safely, whatever its format, size or mode."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import UserError

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 20000 * 20000  # decoding is done lazily; `draft`/`reduce` keep memory low
MAX_SIDE = 20000  # width or height, read from the header before anything is decoded
MAX_ASPECT = 20  # long side / short side: a 60000 x 1 strip is no sketch
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL's own bomb guard, at our bound (it errors above twice that)


def check_image_size(img: Image.Image, what: str) -> None:
    """Width, height, area and aspect ratio of an opened (not yet decoded) image, from its header:
    an image that would explode in memory is one UserError line before any pixel is allocated."""
    check_image_dims(*img.size, what)


def check_image_dims(w: int, h: int, what: str) -> None:
    """The bounds of `check_image_size` for a width and height read from any header."""
    if w < 1 or h < 1:
        raise UserError(f"{what} is {w}x{h} pixels: empty")
    if max(w, h) > MAX_SIDE:
        raise UserError(f"{what} is {w}x{h} pixels; at most {MAX_SIDE} pixels a side")
    if w * h > MAX_PIXELS:
        raise UserError(f"{what} is {w}x{h} pixels; at most {MAX_PIXELS // 10**6} megapixels")
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise UserError(f"{what} is {w}x{h} pixels; its sides may differ by at most {MAX_ASPECT}x")


SVG_RASTER_SIZE = 256  # an SVG sketch is drawn at max(this, resolution) px, as the benchmarks draw them

# svg_reader(path, size) -> (size, size) uint8 ink on white, raising ValueError with the reason: the
# safe SVG rasteriser (data_gen.raster.render_svg_file). Sampling does not import the data layer,
# so the callers above it (flipsketch-animate, the web app) pass it in, like the CLIP filter.
SvgReader = Callable[[Path, int], np.ndarray]


def looks_like_svg(path: str | os.PathLike) -> bool:
    """An .svg file, or a file whose text starts like an SVG document (whatever its extension)."""
    p = Path(path)
    if p.suffix.lower() == ".svg":
        return True
    try:
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"<") and b"<svg" in head.lower()


def load_sketch(
    path: str | os.PathLike, resolution: int, squash: bool = False, svg_reader: SvgReader | None = None
) -> Image.Image:
    """Read any PIL-readable image (extension ignored), or an SVG through `svg_reader`, and return
    a `resolution`^2 RGB image.

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
    if looks_like_svg(p):
        if svg_reader is None:
            raise UserError(
                f"sketch {p} is an SVG: flipsketch-animate and the web app read SVG sketches; "
                "here render it to a PNG first (data_gen.raster.render_svg_file)"
            )
        try:
            gray = svg_reader(p, max(SVG_RASTER_SIZE, int(resolution)))
        except ValueError as exc:  # svg_io.SvgError: malformed, unsafe or too large
            raise UserError(f"cannot read sketch {p} as an SVG ({exc})") from None
        return fit_to_square(
            Image.fromarray(np.asarray(gray, dtype=np.uint8)).convert("RGB"), resolution, squash
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as opened:
                img = opened
                check_image_size(img, f"sketch {p}")  # from the header, before any decoding
                img.draft("RGB", (resolution * 2, resolution * 2))  # JPEG: decode at reduced scale
                # the side the output is resized from: the long one, onto a square canvas (the
                # short one when squashed), kept >= 2x the resolution; the canvas stays small
                side = min(img.size) if squash else max(img.size)
                factor = max(1, side // (resolution * 2))
                if factor > 1:
                    try:
                        img = img.reduce(factor)
                    except (ValueError, NotImplementedError):  # a mode reduce() does not handle
                        img.load()
                img.load()
                rgb = to_rgb_on_white(img)
    except UserError:
        raise
    except MemoryError:
        raise UserError(f"sketch {p} is too large to decode") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on an untrusted file is bad input
        raise UserError(f"cannot read sketch {p} as an image ({type(exc).__name__})") from None
    return fit_to_square(rgb, resolution, squash)


_WIDE_GREY = ("I", "F")  # 32-bit integer / float greyscale, and the 16-bit "I;16*" family


def _wide_grey_to_l(img: Image.Image) -> Image.Image:
    """16/32-bit integer or float greyscale -> 8-bit, scaled by the range the mode stores
    (PIL's own convert("L") clips, so a 16-bit white of 65535 and a grey of 30000 both turn white)."""
    a = np.asarray(img).astype(np.float64)
    finite = np.isfinite(a)
    a = np.where(finite, a, 0.0)
    lo, hi = (float(a[finite].min()), float(a[finite].max())) if finite.any() else (0.0, 0.0)
    if img.mode.startswith("I;16"):
        a = a / 257.0
    elif img.mode == "F" and lo >= 0.0 and hi <= 1.0:
        a = a * 255.0  # float images in [0, 1]
    elif lo >= 0.0 and hi <= 255.0:
        pass  # already 8-bit values
    elif lo >= 0.0 and hi <= 65535.0:
        a = a / 257.0  # 16-bit values held in a wider mode
    else:
        a = (a - lo) / max(hi - lo, 1e-12) * 255.0
    a = np.where(finite, a, 255.0)  # nan/inf pixels: paper
    return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")


def _lab_to_rgb(img: Image.Image) -> Image.Image:
    try:
        from PIL import ImageCms

        transform = ImageCms.buildTransformFromOpenProfiles(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
        return ImageCms.applyTransform(img, transform)
    except Exception:  # noqa: BLE001 - without littlecms: lightness alone is still the drawing
        return img.getchannel(0).convert("RGB")


def to_rgb_on_white(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB, transparent areas on white."""
    img = ImageOps.exif_transpose(img) if img.format in ("JPEG", "TIFF", "WEBP") else img
    mode = img.mode
    if mode.startswith("I;16") or mode in _WIDE_GREY:
        return _wide_grey_to_l(img).convert("RGB")
    if mode == "La":  # premultiplied grey + alpha (PIL cannot convert it): over white = L + 255 - A
        la = np.asarray(img).astype(np.int16)
        grey = np.clip(la[..., 0] + 255 - la[..., 1], 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "LAB":
        return _lab_to_rgb(img)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    if mode in ("1", "L", "P"):
        return img.convert("L").convert("RGB") if mode != "P" else img.convert("RGB")
    return img.convert("RGB")  # RGB, RGBX, CMYK, YCbCr, HSV


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
