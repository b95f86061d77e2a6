"""Confidence intervals for every compared number: percentile bootstrap of a mean over units and the
paired bootstrap of a difference (both methods resampled on the SAME units, a unit = (sketch, seed)),
the "clear best" rule of a sweep and the seeds a difference would need. Pure numpy, seeded."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .checks import as_int
from .errors import UserError

Z_POWER = 1.96 + 0.84  # two-sided 5% test at 80% power
N_CAP = 10000  # n_needed above this is written "> 10000"


@dataclass(frozen=True)
class StatsSettings:
    """How intervals are drawn (conf/eval.yaml `stats`): resamples, confidence level, RNG seed."""

    bootstrap: int = 2000
    confidence: float = 0.95
    seed: int = 0

    @classmethod
    def from_config(cls, node) -> StatsSettings:
        """`stats:` of a config (None: the defaults), checked: bootstrap 100..1e6, confidence in (0.5, 1)."""
        node = node or {}
        unknown = sorted(set(node) - {"bootstrap", "confidence", "seed"})
        if unknown:
            known = "stats.bootstrap, stats.confidence, stats.seed"
            raise UserError(f"stats.{unknown[0]} is not a setting ({known})")
        boot = as_int(node.get("bootstrap", cls.bootstrap), "stats.bootstrap", 100, 1_000_000)
        seed = as_int(node.get("seed", cls.seed), "stats.seed", 0, 2**32 - 1)
        conf = node.get("confidence", cls.confidence)
        if isinstance(conf, bool) or not isinstance(conf, int | float) or not 0.5 < float(conf) < 1:
            raise UserError(f"stats.confidence must be a number between 0.5 and 1 (got {conf!r})")
        return cls(boot, float(conf), seed)

    @property
    def percent(self) -> str:
        return f"{100 * self.confidence:g}%"


def _clean(values) -> np.ndarray:
    v = np.asarray([float(x) for x in values if x is not None], dtype=np.float64)
    return v[np.isfinite(v)]


def _bounds(means: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def _resampled_means(v: np.ndarray, s: StatsSettings) -> np.ndarray:
    rng = np.random.default_rng(s.seed)
    idx = rng.integers(0, v.size, size=(s.bootstrap, v.size))
    return v[idx].mean(axis=1)


def mean_interval(values, settings: StatsSettings | None = None) -> dict:
    """{mean, lo, hi, n}: the mean over units and its percentile bootstrap interval (NaN when empty;
    one unit: lo = hi = the value)."""
    s, v = settings or StatsSettings(), _clean(values)
    if v.size == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}
    lo, hi = _bounds(_resampled_means(v, s), s.confidence) if v.size > 1 else (float(v[0]),) * 2
    return {"mean": float(v.mean()), "lo": lo, "hi": hi, "n": int(v.size)}


def paired_difference(a: dict, b: dict, settings: StatsSettings | None = None) -> dict:
    """a - b over the units both have ({unit: value} each): {diff, lo, hi, n, sd, excludes_zero,
    n_needed}. The same resampled units enter both means, so what the units share cancels."""
    s = settings or StatsSettings()
    common = sorted(k for k in set(a) & set(b) if _finite(a[k]) and _finite(b[k]))
    d = np.asarray([float(a[k]) - float(b[k]) for k in common], dtype=np.float64)
    if d.size == 0:
        return {"diff": math.nan, "lo": math.nan, "hi": math.nan, "n": 0, "sd": math.nan,
                "excludes_zero": False, "n_needed": None}  # fmt: skip
    lo, hi = _bounds(_resampled_means(d, s), s.confidence) if d.size > 1 else (float(d[0]),) * 2
    sd = float(d.std(ddof=1)) if d.size > 1 else math.nan
    excludes = d.size > 1 and (lo > 0 or hi < 0)
    return {"diff": float(d.mean()), "lo": lo, "hi": hi, "n": int(d.size), "sd": sd,
            "excludes_zero": bool(excludes), "n_needed": n_needed(sd, float(d.mean()))}  # fmt: skip


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def n_needed(sd: float, diff: float) -> int | None:
    """Units a paired test needs to see `diff` at this spread (5% two-sided, 80% power):
    ((1.96 + 0.84) sd / |diff|)^2, capped at N_CAP + 1 (diff about 0); None when sd is unknown."""
    if not _finite(sd) or not _finite(diff):
        return None
    if sd == 0:
        return 2 if diff != 0 else N_CAP + 1
    if abs(diff) < 1e-12 or (Z_POWER * sd / abs(diff)) ** 2 > N_CAP:
        return N_CAP + 1
    return max(2, math.ceil((Z_POWER * sd / abs(diff)) ** 2))


def n_text(n: int | None) -> str:
    """ "> 10000", "?" (unknown) or the number."""
    if n is None:
        return "?"
    return f"> {N_CAP}" if n > N_CAP else str(n)


def clear_best(first: dict, second: dict, settings: StatsSettings | None = None) -> dict:
    """Is `first` (the leader: {value, units?, lo?, hi?}) separated from the runner-up `second`?
    Shared units: the paired difference's interval excludes 0. No shared units: the two intervals do
    not overlap. Neither (one number per job): not decidable. {clear, how, ...paired fields}."""
    ua, ub = first.get("units") or {}, second.get("units") or {}
    shared = set(ua) & set(ub)
    if len(shared) >= 2:
        p = paired_difference(ua, ub, settings)
        return {**p, "clear": p["excludes_zero"], "how": "paired"}
    ia, ib = _interval(first, ua, settings), _interval(second, ub, settings)
    if ia is None or ib is None:
        return {"clear": None, "how": "none"}
    clear = ia[1] < ib[0] or ib[1] < ia[0]
    return {"clear": clear, "how": "intervals", "n": 0, "n_needed": None}


def _interval(job: dict, units: dict, settings) -> tuple[float, float] | None:
    if _finite(job.get("lo")) and _finite(job.get("hi")):
        return float(job["lo"]), float(job["hi"])
    if len(units) >= 2:
        m = mean_interval(units.values(), settings)
        return m["lo"], m["hi"]
    return None


def interval_text(mean: float, lo: float, hi: float, decimals: int, signed: bool = False) -> str:
    """`0.912 [0.90, 0.93]` (signed: `+0.012 [-0.00, +0.03]`); `–` when there is no number."""
    if not _finite(mean):
        return "–"
    f = f"{{:{'+' if signed else ''}.{decimals}f}}"
    if not (_finite(lo) and _finite(hi)):
        return f.format(mean)
    return f"{f.format(mean)} [{f.format(lo)}, {f.format(hi)}]"
