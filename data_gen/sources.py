"""Find the inputs: static sketch folders and Live-Sketch output animations.

Static folder: `*.svg` files plus `captions.json` mapping stem (or file name) -> caption (without
one, each file's name is its caption: `cat_jumping.svg` -> "cat jumping", with a warning).
Live-Sketch animation: a folder of `frame000.svg, frame001.svg, ...`; given a run folder, the
frames of its last `svg_logs/svg_step<N>/` are used; given a folder of runs, each run is one
animation. Caption: the one given in the config, else `caption.txt` in the run (or frames)
folder, else a `captions.json` beside the runs mapping run-folder name -> caption.
Missing folders are user errors; individual unusable files are returned as skipped, with why.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from flipsketch.errors import UserError

MAX_CAPTIONS_BYTES = 10_000_000
_FRAME = re.compile(r"^frame(\d+)\.svg$")
_STEP = re.compile(r"^svg_step(\d+)$")


@dataclass(frozen=True)
class Source:
    key: str  # unique, file-name safe id
    kind: str  # "static" | "live_sketch"
    path: Path  # the SVG file, or the folder of frames
    root: Path  # the input folder it came from (files must stay inside it)
    caption: str
    frames: tuple[Path, ...] = ()


@dataclass(frozen=True)
class AnimationInput:
    path: Path
    caption: str | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")[:60] or "x"


def read_captions(
    path: Path, max_bytes: int = MAX_CAPTIONS_BYTES, value: str = "caption text"
) -> dict[str, str]:
    """A captions JSON file (sketch name -> `value`, e.g. the caption or the prompt), read as untrusted
    input: size-capped, and anything but a flat object of strings is one `UserError` line."""
    if path.stat().st_size > max_bytes:
        raise UserError(f"{path} is larger than {max_bytes} bytes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise UserError(f"{path} must be a JSON object mapping sketch name -> {value}")
    return data


def _load_captions(path: Path, required: bool) -> dict[str, str]:
    if not path.is_file():
        if required:
            raise UserError(f"no captions.json in {path.parent} (it maps sketch name -> caption)")
        return {}
    return read_captions(path)


def _input_dir(path: Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UserError(f"{what} folder not found: {path}")
    return path.resolve()


def caption_from_name(stem: str) -> str:
    """`a_cat-jumping` -> `a cat jumping`: the caption of a sketch whose folder has no captions.json."""
    return " ".join(re.sub(r"[_\-]+", " ", stem).split())


def static_sources(folder: Path, notes: list[str] | None = None) -> tuple[list[Source], list[dict]]:
    """The sketches of one folder. Without a captions.json each file's name is its caption (with a
    warning: appended to `notes` when given, else printed to stderr); a file that captions.json
    leaves out is skipped."""
    folder = _input_dir(folder, "sketch")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".svg")
    if not files:
        raise UserError(f"no .svg sketches in {folder}")
    has_captions = (folder / "captions.json").is_file()
    captions = _load_captions(folder / "captions.json", required=False)
    if not has_captions:
        note = f"no captions.json in {folder}: using the file names as captions"
        if notes is None:
            print(f"warning: {note}", file=sys.stderr)
        else:
            notes.append(note)
    sources, skipped = [], []
    for f in files:
        caption = captions.get(f.stem, captions.get(f.name)) if has_captions else caption_from_name(f.stem)
        if not caption or not caption.strip():
            reason = "no caption in captions.json" if has_captions else "no caption in the file name"
            skipped.append({"source": str(f), "reason": reason})
            continue
        key = f"{_slug(folder.name)}-{_slug(f.stem)}"
        sources.append(Source(key, "static", f, folder, " ".join(caption.split())))
    return sources, skipped


def _frame_files(folder: Path) -> list[Path]:
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _FRAME.match(p.name))]
    return [p for _, p in sorted(found)]


def _frames_of_run(run: Path) -> tuple[Path, list[Path]] | None:
    if frames := _frame_files(run):
        return run, frames
    logs = run / "svg_logs"
    if logs.is_dir():
        steps = sorted(
            (int(m.group(1)), p) for p in logs.iterdir() if p.is_dir() and (m := _STEP.match(p.name))
        )
        for _, step in reversed(steps):
            if frames := _frame_files(step):
                return step, frames
    return None


def animation_sources(item: AnimationInput) -> tuple[list[Source], list[dict]]:
    folder = _input_dir(item.path, "animation")
    runs = []
    if found := _frames_of_run(folder):
        runs.append((folder, *found))
    else:
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            if found := _frames_of_run(child):
                runs.append((child, *found))
    if not runs:
        raise UserError(f"no Live-Sketch frames (frame000.svg, ... or svg_logs/svg_step<N>/) under {folder}")
    parent_captions = _load_captions(folder / "captions.json", required=False)
    sources, skipped = [], []
    for run, frames_dir, frames in runs:
        caption = item.caption if len(runs) == 1 else None
        for txt in (run / "caption.txt", frames_dir / "caption.txt"):
            if not caption and txt.is_file() and txt.stat().st_size < 100_000:
                caption = txt.read_text(encoding="utf-8", errors="replace").strip()
        caption = caption or parent_captions.get(run.name)
        if not caption:
            skipped.append(
                {"source": str(run), "reason": "no caption (give {path, caption} or a caption.txt)"}
            )
            continue
        key = f"ls-{_slug(run.name)}"
        sources.append(
            Source(key, "live_sketch", frames_dir, folder, " ".join(caption.split()), tuple(frames))
        )
    return sources, skipped


def unique_keys(sources: list[Source]) -> list[Source]:
    """Make keys unique across inputs, deterministically (suffix a hash of the path on clashes)."""
    seen: dict[str, int] = {}
    for s in sources:
        seen[s.key] = seen.get(s.key, 0) + 1
    out = []
    for s in sources:
        if seen[s.key] > 1:
            digest = hashlib.blake2b(str(s.path).encode(), digest_size=3).hexdigest()
            s = Source(f"{s.key}-{digest}", s.kind, s.path, s.root, s.caption, s.frames)
        out.append(s)
    return out
