"""Train/eval overlap: does a LoRA's training data contain benchmark sketches?

`flipsketch-train` stores the sketches behind its train clips in the LoRA file's metadata
(`train_sources`: file stem + sha256 of the SVG bytes, as data_gen recorded them). Evaluation
compares them with the benchmark items' files: equal bytes are an overlap; a source without a
recorded hash (an older dataset) matches by name.
"""

from __future__ import annotations

import json
from pathlib import Path

from .benchmark import BenchmarkItem


def lora_train_sources(path: str | Path) -> list[dict] | None:
    """The `train_sources` a LoRA file (or its folder) records; None when it records nothing."""
    from safetensors import safe_open

    from ..models.lora import lora_file

    try:
        with safe_open(str(lora_file(path)), framework="pt") as f:
            meta = (f.metadata() or {}).get("flipsketch")
        sources = json.loads(meta).get("train_sources") if meta else None
    except Exception:  # noqa: BLE001 - unreadable files are reported by the model loader, not here
        return None
    return sources if isinstance(sources, list) else None


def _sha256(path: Path) -> str | None:
    from data_gen.build import file_sha256  # the hash data_gen records for each source

    try:
        return file_sha256(path)
    except OSError:
        return None


def overlapping(items: list[BenchmarkItem], sources: list[dict]) -> list[str]:
    """Ids of the items whose sketch file is one of the training sources."""
    hashes = {s.get("sha256") for s in sources if isinstance(s, dict) and s.get("sha256")}
    names = {s.get("name") for s in sources if isinstance(s, dict) and not s.get("sha256")}
    out = []
    for item in items:
        if _sha256(Path(item.source)) in hashes or Path(item.source).stem in names:
            out.append(item.id)
    return out


def overlap_warnings(model: dict, items: list[BenchmarkItem]) -> list[str]:
    """A line when the model config's LoRA was trained on benchmark items (else none)."""
    raw = model.get("lora")
    if not raw or not Path(str(raw)).expanduser().exists():
        return []
    ids = overlapping(items, lora_train_sources(Path(str(raw)).expanduser()) or [])
    if not ids:
        return []
    shown = ", ".join(ids[:8]) + (f" (+{len(ids) - 8} more)" if len(ids) > 8 else "")
    return [
        f"the LoRA {raw} was trained on {len(ids)} of the {len(items)} benchmark sketches "
        f"({shown}): their scores are not held-out"
    ]
