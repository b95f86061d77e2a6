"""Atomic file writes, the one helper every writer uses: write a temp file in the same folder, then
`os.replace` it into place. Readers (and parallel jobs) see the old file or the new one, never half
of one; a killed run leaves at most a stray `.NAME.tmp-*` file (removed by `clean_temp_files`).

    write_text(path, text) / write_bytes(path, data) / save_npy(path, array)
    with atomic_path(path) as tmp: save_file(tensors, str(tmp))      # any writer that takes a path
    with atomic_paths(a, b) as (ta, tb): ...                          # several files, replaced in order
    with atomic_dir(folder) as tmp: ...                               # a whole folder

Foundation layer: imports nothing from flipsketch (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"


def temp_name(path: Path) -> Path:
    """A unique sibling of `path` that `is_temp_file` recognises (same folder: os.replace is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")


@contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[tuple[Path, ...]]:
    """Temp paths to write `paths` through; when the block ends without an error they replace the
    real files, in the order given (e.g. weights before the progress file that points at them).
    On an error the temp files are removed and the real ones are left as they were."""
    targets = [Path(p) for p in paths]
    temps = [temp_name(p) for p in targets]
    try:
        yield tuple(temps)
        for tmp, path in zip(temps, targets, strict=True):
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp path to write `path` through (for writers that take a path: safetensors, torch.save)."""
    with atomic_paths(path) as (tmp,):
        yield tmp


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def save_npy(path: str | os.PathLike, array) -> None:
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temp folder beside `path`; when the block ends without an error it replaces `path`
    (an existing folder there is removed first), else it is removed. The temp folder is made with
    a plain mkdir, so it gets the same mode as any folder the user makes (not mkdtemp's 0700)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temp files and temp folders (`atomic_dir`) that a killed writer left in `folder`
    (not recursive). An entry whose writer (the pid in its name) is still running is left alone,
    so parallel jobs writing the same tree do not lose each other's work."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        if not is_temp_file(p):
            continue
        try:
            pid = int(p.name.rsplit(TMP_MARK, 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            pid = -1
        if pid > 0 and pid != os.getpid() and _pid_alive(pid):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def folder_digest(folder: str | os.PathLike) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder` (temp files left out), to record when
    a folder is written and check when it is reused."""
    import hashlib

    folder = Path(folder)
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not is_temp_file(p):
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            out[p.relative_to(folder).as_posix()] = h.hexdigest()
    return out


def share_like_umask(path: str | os.PathLike) -> None:
    """Give a written file (or every file under a folder) the mode a plain open() would: 0666 & ~umask.

    safetensors writes its files 0600, so teammates on a shared cluster could not read our weights.
    """
    mask = os.umask(0)
    os.umask(mask)
    p = Path(path)
    for f in [p] if p.is_file() else [q for q in p.rglob("*") if q.is_file()]:
        os.chmod(f, 0o666 & ~mask)
