"""Writing animations: GIF, MP4, PNG frames, SVG (traced frames and an animated SVG,
flipsketch.vector), meta.json; the output settings and their check. Binarisation is `ink.binarize`."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import atomic_dir, clean_stale_temps
from .checks import as_bool, as_float, as_int, as_list, as_str
from .errors import UserError

FORMATS = ("gif", "mp4", "png", "svg")  # what an animation is written as (check_formats)
VIDEO_FORMATS = FORMATS[:2]  # the single-file videos (training's validation samples)
BINARIZE_UPSCALE = 4  # conf/output/default.yaml: upsampled 4x before Otsu (64 -> 256 px)
MIN_OUTPUT_SIDE = 256  # every model's default output is at least this many pixels per side


def check_formats(value, name: str, allowed: tuple[str, ...] = FORMATS) -> list[str]:
    """The output formats asked for, checked: a non-empty list of names from `allowed`."""
    formats = [as_str(f, name) for f in as_list(value, name)]
    bad = sorted(set(formats) - set(allowed))
    if bad:
        raise UserError(f"unknown output format(s) {bad}; choose from {', '.join(allowed)}")
    if not formats:
        raise UserError(f"{name} is empty; choose from {', '.join(allowed)}")
    return formats


def check_output_config(node, prefix: str = "output") -> dict:
    """The output settings, checked (types, ranges, formats) before any work starts."""
    from omegaconf import DictConfig, OmegaConf

    d = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})
    out = dict(d)
    out["binarize"] = as_bool(d.get("binarize", True), f"{prefix}.binarize")
    out["binarize_upscale"] = as_int(
        d.get("binarize_upscale", BINARIZE_UPSCALE), f"{prefix}.binarize_upscale", 1, 8
    )
    out["fps"] = as_int(d.get("fps", 10), f"{prefix}.fps", 1, 240)
    formats = check_formats(d.get("formats", list(FORMATS)), f"{prefix}.formats")
    out["formats"] = formats
    f = d.get("clip_filter")
    if f is not None:
        if not isinstance(f, dict):
            raise UserError(f"{prefix}.clip_filter must be a mapping")
        as_bool(f.get("enabled", False), f"{prefix}.clip_filter.enabled")
        as_float(f.get("threshold", 0.9), f"{prefix}.clip_filter.threshold", -1.0, 1.0)
    return out


def json_safe(obj):
    """A copy of `obj` that `json.dumps(..., allow_nan=False)` accepts: NaN and +-Infinity become
    null (they are not JSON), numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps_json(obj, indent: int | None = 2) -> str:
    return json.dumps(json_safe(obj), indent=indent, default=str, allow_nan=False)


def _rgb(frames: np.ndarray) -> np.ndarray:
    return np.repeat(frames[..., None], 3, axis=-1) if frames.ndim == 3 else frames


def write_gif(path: Path, frames: np.ndarray, fps: int = 10) -> None:
    imgs = [Image.fromarray(f) for f in frames]
    imgs[0].save(
        path, save_all=True, append_images=imgs[1:], duration=int(round(1000 / fps)), loop=0, disposal=2
    )


def write_mp4(path: Path, frames: np.ndarray, fps: int = 10) -> None:
    import imageio.v2 as imageio

    rgb = _rgb(frames)
    h, w = rgb.shape[1:3]
    if h % 2 or w % 2:  # H.264 with yuv420p needs even sides
        rgb = np.pad(rgb, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    with imageio.get_writer(
        str(path),
        fps=fps,
        codec="libx264",
        quality=8,
        pixelformat="yuv420p",
        macro_block_size=1,
        ffmpeg_log_level="quiet",  # a failure is raised below, in one line, not ffmpeg's log
    ) as writer:
        for f in rgb:
            writer.append_data(f)
    if not mp4_complete(path):  # ffmpeg's exit status is not passed on: a full disk ends here
        import errno
        import shutil

        if shutil.disk_usage(Path(path).parent).free < 1 << 20:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        raise OSError(errno.EIO, "ffmpeg did not finish the video", str(path))


def mp4_complete(path: str | os.PathLike) -> bool:
    """Whether an MP4 file is whole: its top-level boxes fill the file exactly and include the
    `moov` index, which ffmpeg writes last (a truncated or unfinished file fails)."""
    import struct

    try:
        size = os.path.getsize(path)
        seen, pos = set(), 0
        with open(path, "rb") as fh:
            while pos < size:
                fh.seek(pos)
                head = fh.read(8)
                if len(head) < 8:
                    return False
                n, kind = struct.unpack(">I4s", head)
                if n == 1:
                    big = fh.read(8)
                    if len(big) < 8:
                        return False
                    n = struct.unpack(">Q", big)[0]
                elif n == 0:
                    n = size - pos
                if n < 8 or pos + n > size:
                    return False
                seen.add(kind)
                pos += n
    except OSError:
        return False
    return pos == size and b"moov" in seen


def write_animation(
    out_dir: str | os.PathLike,
    frames: np.ndarray,
    meta: dict,
    fps: int = 10,
    formats: tuple[str, ...] = ("gif", "mp4", "png"),
    stem: str = "animation",
) -> Path:
    """Write one sample atomically: everything lands in a temp folder renamed into place at the end."""
    out_dir = Path(out_dir)
    clean_stale_temps(out_dir.parent)  # hidden temp folders of a killed earlier run
    with atomic_dir(out_dir) as tmp:
        if "gif" in formats:
            write_gif(tmp / f"{stem}.gif", frames, fps)
        if "mp4" in formats:
            write_mp4(tmp / f"{stem}.mp4", frames, fps)
        if "png" in formats:
            (tmp / "frames").mkdir()
            for i, f in enumerate(frames):
                Image.fromarray(f).save(tmp / "frames" / f"{i:03d}.png")
        if "svg" in formats:
            from .vector import write_svgs

            write_svgs(tmp, frames, fps, stem)
        (tmp / "meta.json").write_text(dumps_json(meta))
    return out_dir
