"""How many CPU threads torch uses: one rule for every entry point.

On a machine whose cores are busy with other work, torch's OpenMP threads wait at the end of every
parallel region for a sibling the scheduler has parked, so each region costs a scheduler slice:
measured on 2 busy cores, 2 threads ran a default animate 7x slower than 1 (docs/benchmarks.md,
"Threads"). So the default is the number of cores this process may use (`os.sched_getaffinity`)
less the work already running on them at start (the larger of the 1-minute load average and the
processes running right now, both from the kernel), at least 1:

    threads = clamp(round(cores - busy), 1, cores)

A request (`threads=N` in every task config; the CLIs' `threads=`, argparse `--threads`) is used
as given; `OMP_NUM_THREADS` set in the environment counts as a request too. `auto`, null or ""
apply the rule.
"""

from __future__ import annotations

import os

from .errors import UserError

AUTO = (None, "", "auto")


def available_cores() -> int:
    """The cores this process may run on (its affinity mask; `os.cpu_count()` where unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _procs_running() -> int | None:
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("procs_running"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _running_now(samples: int = 5, gap_s: float = 0.01) -> int | None:
    """Runnable tasks on the machine now (/proc/stat's procs_running, the median of a few reads
    10 ms apart so that a passing kernel thread does not count), this process excluded."""
    import time

    seen = []
    for k in range(samples):
        n = _procs_running()
        if n is None:
            return None
        seen.append(n)
        if k + 1 < samples:
            time.sleep(gap_s)
    return max(0, sorted(seen)[len(seen) // 2] - 1)


def busy_cores() -> float:
    """How many cores other work keeps busy at start: max(1-minute load average, running now)."""
    busy = 0.0
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        pass
    now = _running_now()
    return max(busy, float(now or 0))


def auto_threads(cores: int | None = None, busy: float | None = None) -> int:
    """The rule: the cores free at start, at least 1 (see the module docstring)."""
    cores = available_cores() if cores is None else max(1, int(cores))
    busy = busy_cores() if busy is None else max(0.0, float(busy))
    return int(min(cores, max(1, round(cores - busy))))


def parse_threads(value, key: str = "threads") -> int | None:
    """`value` as a thread count (None for auto); anything else is a `UserError` naming `key`."""
    if value in AUTO or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    if isinstance(value, bool):
        raise UserError(f"{key} must be an integer >= 1 or auto, got {value!r}")
    try:
        n = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise UserError(f"{key} must be an integer >= 1 or auto, got {value!r}") from None
    if not 1 <= n <= 4096:
        raise UserError(f"{key} must be an integer >= 1 or auto, got {value!r}")
    return n


def choose_threads(requested=None, key: str = "threads") -> tuple[int, str]:
    """(thread count, why): the request, else OMP_NUM_THREADS, else the rule."""
    n = parse_threads(requested, key)
    if n is not None:
        return n, f"{key}={n}"
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env)), f"OMP_NUM_THREADS={env}"
        except ValueError:
            pass
    cores, busy = available_cores(), busy_cores()
    return auto_threads(cores, busy), f"auto: {cores} cores, {busy:.1f} busy at start"


def use_threads(requested=None, key: str = "threads") -> int:
    """Set torch's intra-op thread count by `choose_threads`; returns the count set."""
    n, _ = choose_threads(requested, key)
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def config_threads(cfg) -> object:
    """A composed config's thread request: `threads`, or the older `torch_threads` alias."""
    get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: getattr(cfg, k, d))
    value = get("threads", None)
    if value in AUTO:
        value = get("torch_threads", None)
    return value
