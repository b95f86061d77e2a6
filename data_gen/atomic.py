"""Atomic file writes: write a temp file in the same folder, then os.replace it into place.

A killed run leaves at most a stray `.NAME.tmp-*` file (removed by `clean_temp_files` on the next
run), never a half-written clip under its real name.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np

TMP_MARK = ".tmp-"


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def _write(path: Path, write) -> None:
    tmp = _temp_name(path)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    _write(Path(path), lambda fh: fh.write(data))


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def save_npy(path: Path, array: np.ndarray) -> None:
    _write(Path(path), lambda fh: np.save(fh, array, allow_pickle=False))


def is_temp_file(path: Path) -> bool:
    return path.name.startswith(".") and TMP_MARK in path.name


def clean_temp_files(folder: Path) -> list[Path]:
    """Remove temp files a killed run left behind in `folder` (not recursive)."""
    removed = []
    if Path(folder).is_dir():
        for p in Path(folder).iterdir():
            if p.is_file() and is_temp_file(p):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed
