"""Read a dataset written by `python -m data_gen` (the training DataModule imports this).

rows = read_metadata(root)            # list of dicts, one per clip
clip = load_clip(root, rows[0])       # np.ndarray uint8 (T, H, W), 255 = white paper
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from flipsketch import atomic

METADATA = "metadata.jsonl"
CLIPS = "clips"


def rebuild_metadata(root: str | Path, write: bool = True) -> list[dict]:
    """Recreate the metadata rows from the per-clip sidecars (e.g. after a killed run)."""
    root = Path(root)
    rows = []
    for side in sorted((root / CLIPS).glob("*.json")):
        if not side.with_suffix(".npy").is_file():
            continue
        try:
            rec = json.loads(side.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and "clip" in rec:
            rows.append(rec)
    if write:
        atomic.write_text(root / METADATA, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def read_metadata(root: str | Path, split: str | None = None) -> list[dict]:
    """Rows of metadata.jsonl (rebuilt from the sidecars when it is missing), optionally one split."""
    root = Path(root)
    path = root / METADATA
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        rows = rebuild_metadata(root, write=False)
    return rows if split is None else [r for r in rows if r.get("split") == split]


def clip_path(root: str | Path, record: dict) -> Path:
    rel = Path(record["clip"])
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"clip path must stay inside the dataset: {record['clip']!r}")
    return Path(root) / rel


def load_clip(root: str | Path, record: dict, mmap: bool = False) -> np.ndarray:
    """The clip as uint8 (T, H, W); `mmap=True` maps it read-only instead of reading it."""
    arr = np.load(clip_path(root, record), mmap_mode="r" if mmap else None, allow_pickle=False)
    if arr.dtype != np.uint8 or arr.ndim != 3:
        raise ValueError(f"{record['clip']}: expected uint8 (T, H, W), got {arr.dtype} {arr.shape}")
    return arr
