"""User-facing errors: reported as one line on stderr with exit code 2, never a stack trace."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input or a missing resource that the user can fix. Printed as one line, exit code 2."""


class MissingWeightsError(UserError):
    """Weights that cannot be found where the config says they are."""


def report_user_errors(fn: F) -> F:
    """Decorator for CLI entry points: a `UserError` becomes one stderr line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # always one line
            sys.exit(EXIT_USER_ERROR)

    return wrapper  # type: ignore[return-value]
