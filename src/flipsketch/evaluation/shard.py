"""Sharded evaluation: one eval command split over N workers, merged into one table (docs/scale.md).

A layer over the Evaluator: it only picks which (method, item, seed) units a worker runs and, at
the end, gathers. Units go to workers by (method, item) pair, round-robin over the pairs in table
order (every seed of a pair in one worker, so seed batching and inversion reuse stay local); the
samples land in the shared per-item cache (<samples_dir>/...), which is also what makes a killed
shard resume: its rerun skips every finished unit.

  shard.count  workers (torchrun's WORLD_SIZE by default; 1: no sharding)
  shard.index  this worker, 0..count-1 (torchrun's RANK by default)
  shard.gather auto: worker 0, after its own units, waits until every unit is in the cache and then
               writes results.md/csv, the contact sheets and the W&B run, once (one node, torchrun);
               none: only this worker's units (SLURM array tasks); only: the gather step: samples
               nothing and fails naming the missing units and their shard.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from ..errors import UserError

GATHER_MODES = ("auto", "none", "only")


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1
    gather: str = "auto"
    poll_s: float = 10.0
    wait_s: float | None = None  # give up waiting for the other shards after this long (None: never)

    @classmethod
    def of(cls, cfg) -> Shard:
        from ..checks import as_choice, as_float, as_int

        node = cfg.get("shard") or {}
        count = as_int(node.get("count", 1), "shard.count", 1, 100_000)
        index = as_int(node.get("index", 0), "shard.index", 0)
        if index >= count:
            raise UserError(f"shard.index must be in [0, shard.count={count}), got {index}")
        gather = as_choice(node.get("gather", "auto"), "shard.gather", GATHER_MODES)
        poll = as_float(node.get("poll_s", 10.0), "shard.poll_s")
        wait = node.get("wait_s")
        wait = None if wait in (None, "") else as_float(wait, "shard.wait_s")
        if poll <= 0 or (wait is not None and wait < 0):
            raise UserError("shard.poll_s must be > 0 and shard.wait_s >= 0 or null")
        return cls(index, count, gather, poll, wait)

    @property
    def active(self) -> bool:
        """Anything but the plain one-process run."""
        return self.count > 1 or self.gather == "only"

    @property
    def samples(self) -> bool:
        return self.gather != "only"

    @property
    def gathers(self) -> bool:
        """Whether this worker writes the table: the gather step, or worker 0 in auto mode (not in
        a Hydra multirun over the shards: there the launching process gathers, `GatherShards`)."""
        return self.gather == "only" or (self.gather == "auto" and self.index == 0 and not in_multirun())

    def owner(self, pair_index: int) -> int:
        return pair_index % self.count

    def units(self, methods, items, seeds) -> list[tuple[int, object, object, int]]:
        """Every (shard, method, item, seed) in table order."""
        pairs = [(m, it) for m in methods for it in items]
        return [(self.owner(k), m, it, s) for k, (m, it) in enumerate(pairs) for s in seeds]

    def mine(self, methods, items, seeds) -> set[tuple[str, str, int]]:
        """This worker's units as (method name, item id, seed)."""
        return {(m.name, it.id, s) for k, m, it, s in self.units(methods, items, seeds) if k == self.index}

    def device(self, device: str) -> str:
        """`auto` under torchrun on a multi-GPU node: this worker's GPU (LOCAL_RANK)."""
        local = os.environ.get("LOCAL_RANK")
        if device != "auto" or self.count < 2 or local is None:
            return device
        import torch

        if torch.cuda.is_available() and torch.cuda.device_count() > 1:
            return f"cuda:{int(local) % torch.cuda.device_count()}"
        return device

    def describe(self) -> str:
        return f"shard {self.index}/{self.count}"


def missing_units(evaluator, shard: Shard) -> list[tuple[int, str, str, int]]:
    """Units with no finished, same-scoring metrics.json in the cache: (owner, method, item, seed)."""
    out = []
    for k, m, item, seed in shard.units(evaluator.methods, evaluator.items, evaluator.seeds):
        done = evaluator._finished(evaluator.folder(m, item, seed), m, item)
        if done is None:
            out.append((k, m.name, item.id, seed))
    return out


def run_shard(evaluator, shard: Shard) -> list[dict]:
    """This worker's units (resumable: finished ones are skipped); its rows."""
    mine = shard.mine(evaluator.methods, evaluator.items, evaluator.seeds)
    evaluator.select = lambda m, item, seed: (m.name, item.id, seed) in mine
    try:
        return evaluator.run()
    finally:
        evaluator.select = None


def await_all(evaluator, shard: Shard, sleep=time.sleep, clock=time.monotonic) -> None:
    """Worker 0 (auto): wait until every unit is finished; the gather step: fail if one is not."""
    t0 = clock()
    while True:
        missing = missing_units(evaluator, shard)
        if not missing:
            return
        owners = sorted({k for k, *_ in missing})
        if shard.gather == "only" or (shard.wait_s is not None and clock() - t0 > shard.wait_s):
            first = ", ".join(f"{m}/{i}/seed{s} (shard {k})" for k, m, i, s in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise UserError(
                f"{len(missing)} unit(s) not in the cache yet: {first}{more}; run shard.index="
                f"{','.join(map(str, owners))} with shard.count={shard.count} first (a rerun resumes)"
            )
        print(
            f"{shard.describe()}: waiting for {len(missing)} unit(s) of shard(s) {owners}",
            file=sys.stderr,
            flush=True,
        )
        sleep(shard.poll_s)


def shard_result(rows: list[dict], evaluator, shard: Shard) -> dict:
    """What a worker that does not gather returns (no table: the gather step writes it)."""
    return {
        "table": "",
        "summary": [],
        "rows": rows,
        "counts": dict(evaluator.counts),
        "metrics": {},
        "shard": {"index": shard.index, "count": shard.count, "units": len(rows)},
        "videos": [r["folder"] for r in rows],
        "samples_dir": str(evaluator.root),
    }


def in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except (ImportError, ValueError):
        return False


SWEEP_SYNTAX = ("range(", "choice(", "interval(", "glob(", "tag(", "sort(", "shuffle(")


def _key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0]


def _swept(override: str) -> bool:
    """A Hydra sweep value: a comma outside brackets/quotes (`0,1`, not `[0,1]`) or range(...) etc."""
    value, depth, quote = override.partition("=")[2].strip(), 0, None
    if value.startswith(SWEEP_SYNTAX):
        return True
    for ch in value:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            return True
    return False


def gather_overrides(task: list[str], sweep_dir: str) -> list[str] | None:
    """The gather step's overrides after a multirun over shard.index (e.g. one SLURM array task per
    shard); None when shard.index was not swept or another setting was swept as well."""
    task = [str(o) for o in task]
    if not any(_key(o) == "shard.index" and _swept(o) for o in task):
        return None
    rest = [o for o in task if _key(o) not in ("shard.index", "shard.gather", "hydra/launcher")]
    if any(_swept(o) for o in rest if not _key(o).startswith("hydra")):
        return None
    return [*rest, "shard.gather=only", f"hydra.run.dir={sweep_dir}/gather"]


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - hydra is a dependency
    _HydraCallback = object


class GatherShards(_HydraCallback):
    """Hydra callback (conf/eval.yaml): when a multirun over shard.index ends (every SLURM array task
    done), the launching process runs the gather step once: `<sweep dir>/gather/results.md`."""

    def on_multirun_end(self, config, **kwargs) -> None:
        import subprocess

        over = gather_overrides(list(config.hydra.overrides.task), str(config.hydra.sweep.dir))
        if over is None:
            return
        cmd = [sys.executable, "-m", "flipsketch.eval", *over]
        print("gather: " + " ".join(cmd[1:]), flush=True)
        rc = subprocess.call(cmd, cwd=str(config.hydra.runtime.cwd))
        if rc != 0:
            print(
                f"error: the gather step failed (exit code {rc}); rerun it: {' '.join(cmd[1:])}",
                file=sys.stderr,
            )
