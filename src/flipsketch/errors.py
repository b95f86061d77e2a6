"""User-facing errors: reported as one line on stderr with exit code 2, never a stack trace."""

from __future__ import annotations

import errno
import functools
import re
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input or a missing resource that the user can fix. Printed as one line, exit code 2."""


class MissingWeightsError(UserError):
    """Weights that cannot be found where the config says they are."""


class DiskFullError(UserError):
    """A write failed because the disk (or quota) is full. Every writer goes through a temp file in
    the destination folder renamed into place, so nothing partial is left and the previous file
    (e.g. last.ckpt) is intact; the user frees space and reruns."""


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# how libraries that wrap the OSError (safetensors, torch's zip writer, ffmpeg) word it
_DISK_FULL_WORDS = ("no space left on device", "storagefull", "disk quota exceeded", "errno 28")
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")  # numpy's words for a short write


def as_disk_full(exc: BaseException) -> DiskFullError | None:
    """The one-line DiskFullError for `exc` when it (or what caused it) is a full disk, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return exc
        text = str(exc).lower()
        if (
            (isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS)
            or any(w in text for w in _DISK_FULL_WORDS)
            or (isinstance(exc, OSError) and _SHORT_WRITE.search(text))
        ):
            where = getattr(exc, "filename", None)
            reason = getattr(exc, "strerror", None) or "no space left on device"
            return DiskFullError(
                f"disk full ({reason})"
                + (f" writing {where}" if where else "")
                + ": nothing partial was kept and earlier files are intact; free space and rerun"
            )
        exc = exc.__cause__ or exc.__context__
    return None


def report_user_errors(fn: F) -> F:
    """Decorator for CLI entry points: a `UserError` (and a full disk, `DiskFullError`) becomes one
    stderr line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # always one line
            sys.exit(EXIT_USER_ERROR)
        except Exception as exc:
            full = as_disk_full(exc)
            if full is None:
                raise
            print(f"error: {' '.join(str(full).split())}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)

    return wrapper  # type: ignore[return-value]
