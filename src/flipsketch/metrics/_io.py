"""Turn the image formats the metrics accept into one canonical form.

Accepted inputs (values: integer dtypes are 0-255, float dtypes are 0-1, bool is 0/1; uint8
stays uint8 so CLIP preprocessing can resample exactly like open_clip's PIL pipeline):

* a PIL image;
* a numpy array, channels LAST: a batch is (T, H, W) or (T, H, W, C); a single image is
  (H, W) or (H, W, C);
* a torch tensor, channels FIRST: a batch is (T, H, W) or (T, C, H, W); a single image is
  (H, W) or (C, H, W);
* a list/tuple of single images (sizes may differ).

C may be 1 (gray), 3 (RGB) or 4 (RGBA, composited over white, since sketches are drawn on
white paper). A 2-D input is always one image.
"""

from __future__ import annotations

import numpy as np
import torch

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's "L" mode


def _pil_to_array(img) -> np.ndarray:
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
    elif img.mode != "L":
        img = img.convert("RGB")
    return np.array(img)  # a writable copy (torch.from_numpy warns on read-only arrays)


def _scale(x: torch.Tensor) -> torch.Tensor:
    """-> uint8 (0-255) or float32 (0-1)."""
    if x.dtype == torch.uint8:
        return x
    if x.dtype == torch.bool:
        return x.float()
    if x.is_floating_point():
        return x.float()
    return x.clamp(0, 255).to(torch.uint8)


def as_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 0-255 or float 0-1 -> float32 0-1."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def _to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) with C in {1, 3, 4} -> (N, 3, H, W), same dtype."""
    c = x.shape[1]
    if c == 1:
        return x.expand(-1, 3, -1, -1)
    if c == 3:
        return x
    if c == 4:
        f = as_float(x)
        rgb = f[:, :3] * f[:, 3:4] + (1.0 - f[:, 3:4])
        return (rgb * 255.0).round().to(torch.uint8) if x.dtype == torch.uint8 else rgb
    raise ValueError(f"images must have 1, 3 or 4 channels, got {c} (shape {tuple(x.shape)})")


def _one(img) -> torch.Tensor:
    """A single image -> (1, 3, H, W) float in [0, 1]."""
    if isinstance(img, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(img))
        if x.ndim == 2:
            x = x[None, None]
        elif x.ndim == 3:
            x = x.permute(2, 0, 1)[None]
        else:
            raise ValueError(f"a single image array must be (H, W) or (H, W, C), got shape {img.shape}")
    elif isinstance(img, torch.Tensor):
        x = img.detach().cpu()
        if x.ndim == 2:
            x = x[None, None]
        elif x.ndim == 3:
            x = x[None]
        else:
            raise ValueError(
                f"a single image tensor must be (H, W) or (C, H, W), got shape {tuple(img.shape)}"
            )
    elif hasattr(img, "convert"):  # PIL image
        return _one(_pil_to_array(img))
    else:
        raise TypeError(f"unsupported image type {type(img).__name__}")
    return _to_rgb(_scale(x))


def _many(images) -> torch.Tensor:
    """A batch array/tensor -> (T, 3, H, W) float in [0, 1]."""
    if isinstance(images, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(images))
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4:
            x = x.permute(0, 3, 1, 2)
        else:
            raise ValueError(f"a frame array must be (T, H, W) or (T, H, W, C), got shape {images.shape}")
    else:
        x = images.detach().cpu()
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim != 4:
            raise ValueError(f"a frame tensor must be (T, H, W) or (T, C, H, W), got shape {tuple(x.shape)}")
    return _to_rgb(_scale(x))


def image_list(images, single: bool = False) -> list[torch.Tensor]:
    """Images -> list of RGB (3, H, W) tensors: uint8 (0-255) for integer input, else float32 (0-1)."""
    if isinstance(images, list | tuple):
        out = [im for item in images for im in _one(item)]
    elif single or not isinstance(images, np.ndarray | torch.Tensor) or images.ndim == 2:
        out = list(_one(images))
    else:
        out = list(_many(images))
    if not out:
        raise ValueError("no images given")
    return out


def _rgb_to_gray_uint8(x: torch.Tensor) -> np.ndarray:
    w = torch.tensor(_LUMA).view(1, 3, 1, 1)
    gray = (as_float(x) * w).sum(1).clamp(0.0, 1.0)
    return (gray * 255.0).round().to(torch.uint8).numpy()


def gray_image(img) -> np.ndarray:
    """One image -> uint8 (H, W) grayscale."""
    if isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 2:
        return img
    return _rgb_to_gray_uint8(_one(img))[0]


def gray_frames(frames) -> np.ndarray:
    """A clip -> uint8 (T, H, W) grayscale. All frames must share one size."""
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 3:
        return frames
    imgs = image_list(frames)
    if len({tuple(im.shape) for im in imgs}) != 1:
        raise ValueError("all frames must have the same size")
    return _rgb_to_gray_uint8(torch.stack(imgs))
