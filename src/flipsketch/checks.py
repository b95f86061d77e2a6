"""Checks on what a user typed, run before any model is built or any file written.

Each helper returns the checked value or raises a one-line `UserError` naming the setting: a
config value of the wrong type (`sampler.num_frames=abc`), a number that is not finite
(`guidance_scale=nan`), or an output location that is a file or cannot be written.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import UserError


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_int(value: Any, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer setting (a whole float like 4.0 is accepted; True/False, 2.5 and 'abc' are not)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name} must be an integer, got {_shown(value)}")
    if lo is not None and value < lo:
        raise UserError(f"{name} must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise UserError(f"{name} must be <= {hi}, got {value}")
    return value


def as_float(value: Any, name: str, lo: float | None = None, hi: float | None = None) -> float:
    """A finite real-number setting (nan, inf, True/False and strings are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{name} must be a number, got {_shown(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value}")
    if lo is not None and value < lo:
        raise UserError(f"{name} must be >= {lo:g}, got {value:g}")
    if hi is not None and value > hi:
        raise UserError(f"{name} must be <= {hi:g}, got {value:g}")
    return value


def as_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{name} must be true or false, got {_shown(value)}")
    return value


def as_str(value: Any, name: str, allow_empty: bool = True) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UserError(f"{name} must be a text value, got {_shown(value)}")
    text = str(value)
    if not allow_empty and not text.strip():
        raise UserError(f"{name} is empty")
    return text


def as_choice(value: Any, name: str, choices: tuple[str, ...] | list[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}, got {_shown(value)}")
    return value


def as_list(value: Any, name: str) -> list:
    """A list setting; a single scalar counts as a list of one."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    try:
        from omegaconf import ListConfig

        if isinstance(value, ListConfig):
            return list(value)
    except ImportError:  # pragma: no cover - omegaconf ships with hydra
        pass
    if isinstance(value, dict) or hasattr(value, "keys"):
        raise UserError(f"{name} must be a list, got a mapping")
    return [value]


MAX_SEED = (
    2**32 - 1
)  # what every generator we seed accepts (numpy's legacy seed, Lightning's seed_everything)


def as_seeds(value: Any, name: str = "seeds") -> list[int]:
    """A non-empty list of distinct integer seeds in [0, MAX_SEED] (a single seed counts as a list of one)."""
    seeds = as_list(value, name)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise UserError(f"{name} must be a non-empty list of non-negative integers, got {_shown(seeds)}")
    big = [s for s in seeds if s > MAX_SEED]
    if big:
        raise UserError(f"{name}: a seed must be at most {MAX_SEED} (2^32 - 1), got {_shown(big[0])}")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"{name} lists a seed twice: {seeds}")
    return seeds


def literal_text(text: str) -> str:
    """`text` written so that OmegaConf reads it back as exactly `text`: user text (a prompt, an
    uploaded file's name) is data, never an interpolation (`${oc.env:HOME}` stays those characters).
    Each `${` gets one backslash more than twice the backslashes before it (OmegaConf's escaping)."""
    import re

    return re.sub(r"(\\*)\$\{", lambda m: "\\" * (2 * len(m.group(1)) + 1) + "${", str(text))


def find_nonfinite(node: Any, prefix: str = "") -> str | None:
    """The dotted name of the first nan/inf number in a (nested) config, or None.

    Interpolations are not resolved: the value they point at is checked where it is written."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, DictConfig | ListConfig):
        node = OmegaConf.to_container(node, resolve=False)
    if isinstance(node, dict):
        for k, v in node.items():
            found = find_nonfinite(v, f"{prefix}.{k}" if prefix else str(k))
            if found:
                return found
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            found = find_nonfinite(v, f"{prefix}[{i}]")
            if found:
                return found
    elif isinstance(node, float) and not math.isfinite(node):
        return f"{prefix}={node}"
    return None


def reject_nonfinite(cfg: Any, skip: tuple[str, ...] = ("hydra",)) -> None:
    """A one-line UserError naming the first nan/inf number anywhere in `cfg` (Hydra's own node
    left out)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=False)
    if isinstance(cfg, dict):
        cfg = {k: v for k, v in cfg.items() if k not in skip}
    found = find_nonfinite(cfg)
    if found:
        name, _, value = found.partition("=")
        raise UserError(f"{name} must be a finite number, got {value}")


def check_out_dir(path: Any, name: str) -> Path:
    """An output folder: it may not exist yet, but it must not be a file and it must be creatable.

    The nearest existing parent is probed by creating and removing an empty temporary folder,
    which is what "writable" means for root as well as for everyone else."""
    if path is None or (isinstance(path, str) and not path.strip()):
        raise UserError(f"{name} is empty: give a folder")
    if isinstance(path, bool) or not isinstance(path, str | os.PathLike | int | float):
        raise UserError(f"{name} must be a folder path, got {_shown(path)}")
    p = Path(str(path)).expanduser()
    what = f"{name} {p}" if " " in name else f"{name}={p}"
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} is an existing file, not a folder")
    probe = p
    while not probe.exists():
        if probe.is_symlink():
            raise UserError(f"{what}: {probe} is a broken link")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{what} cannot be created: {probe} is a file, not a folder")
    try:
        tmp = tempfile.mkdtemp(prefix=".flipsketch-write-check-", dir=probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"{what} is not writable ({reason} in {probe})") from None
    os.rmdir(tmp)
    return p


def check_out_file_slot(path: Path, name: str) -> None:
    """A folder the run will write into (e.g. out/seed0): it may exist as a folder, never as a file."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{name}: {path} is an existing file, not a folder")


# ----------------------------------------------------------------------------- folders we own
RUN_MARKER = ".flipsketch-run"  # written into every output folder a flipsketch tool creates


def is_our_folder(path: Path, legacy: tuple[str, ...] = ()) -> bool:
    """Whether `path` is an output folder a flipsketch tool wrote: it holds RUN_MARKER (or, for
    folders written before the marker existed, one of the `legacy` names the tool always writes)."""
    p = Path(path)
    return (p / RUN_MARKER).is_file() or any((p / name).exists() for name in legacy)


def check_own_folder(path: Any, name: str, legacy: tuple[str, ...] = ()) -> Path:
    """An output folder we may write into (and replace parts of): new, empty, or one of ours.
    An existing folder with other things in it (e.g. the user's own seed0/) is refused in one line:
    nothing a flipsketch tool did not write is ever overwritten or deleted."""
    p = Path(str(path)).expanduser()
    if not p.is_dir() or is_our_folder(p, legacy) or not any(p.iterdir()):
        return p
    what = f"{name} {p}" if " " in name else f"{name}={p}"
    raise UserError(
        f"{what} is an existing folder that flipsketch did not write (it has no {RUN_MARKER} file); "
        "give a new or empty folder"
    )


def mark_own_folder(path: Path, tool: str) -> None:
    """Create `path` (if needed) and write RUN_MARKER into it: the folder is ours to overwrite."""
    import json

    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    marker = p / RUN_MARKER
    if not marker.is_file():
        marker.write_text(json.dumps({"written_by": tool}) + "\n", encoding="utf-8")
