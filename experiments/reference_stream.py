"""Which reference stream? Copies of the stepped frame 0 (ours) vs the authors' evolving video, paired.

Reads the `full` samples of two tiny_world_evidence runs made with the same seeds, one per mode:

    python experiments/tiny_world_evidence.py --seeds 0 --methods full,no_composition,t2v_plain \
        --out logs/ref_copies
    python experiments/tiny_world_evidence.py --seeds 0 --methods full,no_composition,t2v_plain \
        --out logs/ref_video sampler.faithful.reference_video=true
    python experiments/reference_stream.py logs/ref_copies logs/ref_video

and prints identity, Chamfer, motion and frame-0 IoU per mode over the (sketch, seed) pairs both runs
finished, with the paired difference and its standard error (docs/tiny_world.md "Reference stream").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_world_evidence import heldout_sketches, sample_scores  # noqa: E402

KEYS = ("identity", "chamfer", "motion", "frame0_iou")


def _mean_se(v) -> tuple[float, float]:
    v = np.asarray(v, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("copies", type=Path, help="run folder of the default (copies) mode")
    p.add_argument("video", type=Path, help="run folder with sampler.faithful.reference_video=true")
    a = p.parse_args(argv)
    from flipsketch.cli import compose_config
    from flipsketch.evaluation.benchmark import load_benchmark

    runs = {"copies": a.copies, "video": a.video}
    cfg = compose_config("eval", ["experiment=tiny_world_evidence", "sampler=tiny_world"])
    items = load_benchmark(cfg.benchmark, a.copies / "benchmark")
    sketches = heldout_sketches(items, int(cfg.model.resolution))
    rows = {}
    for name, root in runs.items():
        for mj in root.glob("eval/samples/*/*/full-*/*/seed*/metrics.json"):
            m = json.loads(mj.read_text())
            rows[(name, m["item"], m["seed"])] = {**m, "folder": str(mj.parent), "method": name}
    pairs = sorted(
        {(i, s) for n, i, s in rows if n == "copies"} & {(i, s) for n, i, s in rows if n == "video"}
    )
    if not pairs:
        print("error: no (sketch, seed) finished in both runs", file=sys.stderr)
        return 2
    scores = sample_scores([rows[(n, i, s)] for n in runs for i, s in pairs], items, sketches)
    print(f"{len(pairs)} pairs: {', '.join(f'{i}/seed{s}' for i, s in pairs)}")
    for key in KEYS:
        vals = {
            n: [
                scores[(n, i, s)]["identity"] if key == "identity" else rows[(n, i, s)][key] for i, s in pairs
            ]
            for n in runs
        }
        (c, cs), (v, vs) = _mean_se(vals["copies"]), _mean_se(vals["video"])
        d, ds = _mean_se(np.subtract(vals["copies"], vals["video"]))
        print(
            f"{key:10s} copies {c:.3f} ± {cs:.3f}  video {v:.3f} ± {vs:.3f}  copies - video {d:+.3f} ± {ds:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
