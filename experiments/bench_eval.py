"""Benchmark: evaluation throughput (samples per second) with and without reusing a sketch's work.

Runs `flipsketch-eval experiment=tiny_ablation` (7 FlipSketch variants x 2 sketches x 2 seeds on the
tiny model) in one process: per-sample as before (`reuse_sketch=false`), with the inversion, prompt
embeddings and reference stream computed once per sketch (`reuse_sketch=true`, the default), and
with both seeds of an item in one call on top (`batch_seeds=2`); each into its own samples folder
so that nothing is skipped. Prints samples/s, the ratios, and whether every metric of every row is
identical to the per-sample run (reuse_sketch: bit-identical; batch_seeds: float32 rounding).

  python experiments/bench_eval.py [extra flipsketch-eval overrides]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from flipsketch.evaluation import run_eval

KEYS = ("s2v", "t2v", "chamfer", "motion", "flicker", "frame0_iou")


def main(argv: list[str]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    runs = {
        "per sample (reuse_sketch=false)": ["reuse_sketch=false"],
        "reuse_sketch=true": ["reuse_sketch=true"],
        "reuse_sketch=true batch_seeds=2": ["reuse_sketch=true", "batch_seeds=2"],
    }
    results = {}
    for k, (name, extra) in enumerate(runs.items()):
        t0 = time.perf_counter()
        res = run_eval(
            [
                "experiment=tiny_ablation",
                "logger=none",
                f"paths.log_dir={tmp}",
                f"paths.output_dir={tmp / f'run{k}'}",
                f"samples_dir={tmp / f'samples{k}'}",
                *extra,
                *argv,
            ]
        )
        seconds = time.perf_counter() - t0
        rows = res["rows"]
        results[name] = (len(rows), seconds, [tuple(r.get(m) for m in KEYS) for r in rows])
        print(f"  {name}: {len(rows)} samples in {seconds:.1f} s", flush=True)
    base_n, base_s, base_m = next(iter(results.values()))
    print(f"experiment=tiny_ablation {' '.join(argv)}")
    print(
        "| run | samples | seconds | samples/s | x per sample | metrics identical |\n|---|---|---|---|---|---|"
    )
    for name, (n, sec, m) in results.items():
        print(
            f"| {name} | {n} | {sec:.1f} | {n / sec:.3f} | {base_s / sec * n / base_n:.2f} | {m == base_m} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
