"""Reading a generated clip back from disk: a folder of frame images, or one GIF/MP4/WebM file."""

from __future__ import annotations

import re
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from ..errors import UserError
from ..sketch import check_image_dims, check_image_size

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
VIDEO_SUFFIXES = (".gif", ".mp4", ".webm", ".avi", ".mov")
MAX_FRAMES = 1000


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def read_video_file(path: Path) -> np.ndarray:
    """All frames of a GIF or video file as uint8 RGB (F, H, W, 3)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".gif":
            with Image.open(path) as im:
                check_image_size(im, f"video {path}")
                frames = [
                    np.asarray(f.convert("RGB")) for f in islice(ImageSequence.Iterator(im), MAX_FRAMES)
                ]
        else:
            import imageio.v2 as imageio

            with imageio.get_reader(str(path)) as reader:
                w, h = (reader.get_meta_data().get("size") or (1, 1))[:2]
                check_image_dims(int(w), int(h), f"video {path}")
                frames = [np.asarray(f)[..., :3] for f in islice(reader, MAX_FRAMES)]
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a bad file for the user to fix
        raise UserError(f"cannot read video {path} ({type(exc).__name__})") from None
    if not frames:
        raise UserError(f"video {path} has no frames")
    return np.stack(frames).astype(np.uint8)


def read_image_folder(folder: Path) -> np.ndarray | None:
    files = sorted(
        (p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=_natural_key,
    )
    if not files:
        return None
    frames = []
    from ..sketch import to_rgb_on_white

    for p in files[:MAX_FRAMES]:
        try:
            with Image.open(p) as im:
                check_image_size(im, f"frame {p}")
                frames.append(np.asarray(to_rgb_on_white(im)))
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - a frame we cannot decode is a bad file for the user
            raise UserError(f"cannot read frame {p} ({type(exc).__name__})") from None
    if len({f.shape for f in frames}) != 1:
        raise UserError(f"frames in {folder} differ in size")
    return np.stack(frames)


def read_clip(path: Path) -> np.ndarray:
    """Frames from `path`: a video file, a folder of frame images (sorted by name, numbers in
    natural order), or a folder holding exactly one video file somewhere below it."""
    path = Path(path)
    if path.is_file():
        return read_video_file(path)
    if not path.is_dir():
        raise UserError(f"no frames at {path}")
    frames = read_image_folder(path)
    if frames is not None:
        return frames
    videos = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if len(videos) == 1:
        return read_video_file(videos[0])
    what = "no frame images or video" if not videos else f"{len(videos)} videos (expected one)"
    raise UserError(f"{path} holds {what}")
