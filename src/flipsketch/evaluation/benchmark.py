"""A benchmark: a list of (sketch, prompt) items, from a config (conf/benchmark/*.yaml).

Items come from `items: [{sketch: FILE, prompt: TEXT, id: NAME?}, ...]`, or from a captions JSON
(`captions: captions.json` mapping a file stem or name to its prompt) in `root`. Files are relative
to `root`; a relative `root` is looked up from the current folder, then from the repository root (installed:
the folder holding the installed `data_gen`, whose sketches the wheel carries).
SVG sketches are rendered to PNG (data_gen's safe reader + cairo) into the run folder at eval time.
Everything is checked up front: a missing sketch or an empty prompt is one clear error.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path
from ..errors import UserError
from ..resources import ROOT_DIR

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
SKETCH_SUFFIXES = (".svg", *IMAGE_SUFFIXES)
MAX_JSON_BYTES = 10_000_000


@dataclass(frozen=True)
class BenchmarkItem:
    id: str  # file-name safe, unique within the benchmark
    sketch: Path  # the raster image the methods read (an SVG's rendering)
    prompt: str
    source: Path  # the file the benchmark names
    sha: str  # sha256 of the sketch image bytes, stored with every result

    def to_dict(self) -> dict:
        return {"id": self.id, "sketch": str(self.sketch), "prompt": self.prompt, "source": str(self.source)}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.")[:80] or "item"


def resolve_root(root: str | None) -> Path | None:
    if root in (None, ""):
        return None
    p = Path(str(root)).expanduser()
    if p.is_absolute() or p.exists():
        return p
    repo = ROOT_DIR / p  # the checkout, or where the installed packages are (data_gen/sketches)
    return repo if repo.exists() else p


def _read_captions(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise UserError(f"captions file not found: {path}")
    from data_gen.sources import read_captions

    return read_captions(path, MAX_JSON_BYTES, "prompt")


def _find_file(root: Path, name: str) -> Path:
    p = root / name
    if p.suffix.lower() in SKETCH_SUFFIXES:
        return p
    for suffix in SKETCH_SUFFIXES:
        if (root / f"{name}{suffix}").is_file():
            return root / f"{name}{suffix}"
    return p


def entries(spec) -> list[dict]:
    """The raw (id, sketch path, prompt) entries a benchmark config names, in order."""
    name = spec.get("name") or "benchmark"
    root = resolve_root(spec.get("root"))
    if spec.get("items"):
        out = []
        for k, it in enumerate(spec["items"]):
            if not hasattr(it, "get") or it.get("sketch") in (None, ""):
                raise UserError(f"benchmark {name}: item {k} needs a sketch (and a prompt)")
            path = Path(str(it["sketch"])).expanduser()
            path = path if path.is_absolute() or root is None else root / path
            out.append({"id": it.get("id") or path.stem, "path": path, "prompt": it.get("prompt")})
    elif spec.get("captions"):
        if root is None or not root.is_dir():
            raise UserError(f"benchmark {name}: folder not found: {spec.get('root')}")
        captions = _read_captions(root / str(spec["captions"]))
        out = [{"id": Path(k).stem, "path": _find_file(root, k), "prompt": v} for k, v in captions.items()]
    else:
        raise UserError(
            f"benchmark {name}: give `items` (a list of {{sketch, prompt}}) or `captions` (a JSON file)"
        )
    for e in out:
        e["id"] = slug(str(e["id"]))
    only = spec.get("only")
    if isinstance(only, str):
        only = [only]
    if only:
        by_id = {e["id"]: e for e in out}
        missing = [o for o in only if slug(str(o)) not in by_id]
        if missing:
            raise UserError(f"benchmark {name}: no item(s) {missing} (have {', '.join(by_id)})")
        out = [by_id[slug(str(o))] for o in only]
    if spec.get("limit"):
        from ..checks import as_int

        out = out[: as_int(spec["limit"], "benchmark.limit", 1)]
    return out


def check_benchmark(spec) -> list[dict]:
    """Every item of `spec` checked (files exist, prompts given, ids distinct); nothing is written."""
    name = spec.get("name") or "benchmark"
    raw = entries(spec)
    if not raw:
        raise UserError(f"benchmark {name} has no items")
    seen: set[str] = set()
    for e in raw:
        if e["id"] in seen:
            raise UserError(f"benchmark {name}: two items are called {e['id']!r}; give them distinct `id`s")
        seen.add(e["id"])
        if not e["path"].is_file():
            raise UserError(f"benchmark {name}: sketch not found: {e['path']}")
        if e["path"].suffix.lower() not in SKETCH_SUFFIXES:
            raise UserError(
                f"benchmark {name}: {e['path']} is not an image or SVG ({', '.join(SKETCH_SUFFIXES)})"
            )
        if not isinstance(e["prompt"], str) or not e["prompt"].strip():
            raise UserError(f"benchmark {name}: item {e['id']!r} has no prompt")
    return raw


def load_benchmark(spec, render_dir: Path) -> list[BenchmarkItem]:
    """Check every item of `spec` and render SVG sketches to PNG under `render_dir`."""
    raw = check_benchmark(spec)
    items = []
    for e in raw:
        sketch = e["path"]
        if sketch.suffix.lower() == ".svg":
            sketch = render_svg(
                sketch, Path(render_dir) / f"{e['id']}.png", int(spec.get("raster_size") or 256)
            )
        else:
            check_image(sketch)
        sha = hashlib.sha256(sketch.read_bytes()).hexdigest()
        items.append(BenchmarkItem(e["id"], sketch, " ".join(e["prompt"].split()), e["path"], sha))
    return items


def render_svg(svg: Path, png: Path, size: int) -> Path:
    from PIL import Image

    from data_gen.raster import render_svg_file
    from data_gen.svg_io import SvgError

    try:
        gray = render_svg_file(svg, size)
    except SvgError as exc:
        raise UserError(f"cannot use sketch {svg}: {exc}") from None
    png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(png) as tmp:
        Image.fromarray(gray).save(tmp, format="PNG")
    return png


def check_image(path: Path) -> None:
    from ..sketch import load_sketch

    load_sketch(path, 32)  # raises a one-line UserError for unreadable files
