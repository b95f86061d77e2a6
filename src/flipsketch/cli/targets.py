"""What a composed config may build: every `_target_` a plain dotted name that runs no commands,
and `instantiate_checked`, which lets a `UserError` raised while building come out as itself."""

from __future__ import annotations

import re

from ..errors import UserError
from . import hydra_adapter as hy

# Modules a `_target_` may never name, whatever Hydra's own policy says (it can run code).
_BLOCKED_TARGETS = (
    "os.", "posix.", "nt.", "subprocess.", "builtins.", "sys.", "shutil.", "importlib.", "pickle.",
    "marshal.", "runpy.", "ctypes.", "code.", "codeop.", "pty.", "socket.", "webbrowser.",
)  # fmt: skip


def blocked_target(target: str) -> bool:
    if hy.hydra_blocks_target(target):
        return True
    return target.startswith(_BLOCKED_TARGETS) or "." not in target


def check_targets(cfg) -> None:
    """Every `_target_` in a composed config (Hydra's own node included: hydra.callbacks are built
    at start-up) must be a plain dotted name that is not an executable capability (os.system,
    builtins.eval, subprocess.*, ...): one line naming the setting, before anything is built."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                key = f"{prefix}.{k}" if prefix else str(k)
                if k == "_target_":
                    t = v if isinstance(v, str) else repr(v)
                    if not isinstance(v, str) or "${" in t or not re.fullmatch(r"[A-Za-z_][\w.]*", t):
                        raise UserError(f"{key}={t[:80]!r} is not allowed: a _target_ is a plain dotted name")
                    if blocked_target(t):
                        raise UserError(
                            f"{key}={t!r} is not allowed: a config may not name a target that runs "
                            "commands or code (os, subprocess, builtins, ...)"
                        )
                walk(v, key)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{prefix}[{i}]")

    if isinstance(cfg, DictConfig | ListConfig):
        cfg = OmegaConf.to_container(cfg, resolve=False)
    walk(cfg, "")


def instantiate_checked(node, **kwargs):
    """`hydra.utils.instantiate` that lets a UserError raised inside come out as itself
    (Hydra wraps every error in an InstantiationException carrying a stack trace)."""
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, UserError):
                raise cause from None
            cause = cause.__cause__ or cause.__context__
        raise
