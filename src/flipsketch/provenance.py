"""What a run records about itself: the code (git commit when the package runs from a git checkout,
the package version), the library versions, the UTC time and the command line."""

from __future__ import annotations

import datetime
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]


def git_state(root: Path = SOURCE_ROOT) -> dict | None:
    """{"commit", "dirty"} of the checkout the package runs from; None outside a git checkout."""
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def provenance(argv: list[str] | None = None) -> dict:
    """The record meta.json carries: git, versions, UTC time, the command line."""
    from . import __version__

    argv = sys.argv if argv is None else argv
    return {
        "git": git_state(),
        "versions": {
            "flipsketch": __version__,
            "python": sys.version.split()[0],
            **{d: _version(d) for d in ("torch", "diffusers", "transformers", "pytorch-lightning")},
        },
        "time_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": shlex.join([Path(argv[0]).name, *argv[1:]]) if argv else "",
    }
