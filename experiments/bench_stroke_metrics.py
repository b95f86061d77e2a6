"""Benchmark: the stroke metrics (Chamfer, motion, tolerant IoU) now against a former version of
`flipsketch/metrics/stroke_metrics.py`, read from git, on the same masks in one run.

The former code (up to commit abb3388) measured Chamfer by `torch.cdist` over at most 4096 pixels
per mask (larger masks subsampled evenly) and dilated by shifted ORs; today's takes scipy's exact
distance transform over every pixel and `ndimage.binary_dilation`. Inputs: the shipped sketches
(data_gen/sketches/*.svg) at 64 and 256 px against themselves shifted by 2 px, and generated clips
(`--clip SKETCH.svg FRAMES_DIR`, e.g. flipsketch-animate ... output.binarize=false
output.formats=[png]) scored as evaluation scores them (raw frames at the model's 64 px) and as
written (binarised at output.binarize_upscale=4: 256 px). Prints each metric old and new, the
largest difference, and the seconds of each (best of `--repeats`, interleaved).

  python experiments/bench_stroke_metrics.py --rev abb3388 --clip data_gen/sketches/fish.svg OUT/seed0/frames
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image

from data_gen.raster import render_svg_file
from flipsketch.ink import binarize
from flipsketch.metrics import stroke_metrics as new

REPO = Path(__file__).resolve().parents[1]
PATH = "src/flipsketch/metrics/stroke_metrics.py"


def former(rev: str):
    """The stroke metrics module as it was at `rev`, imported beside today's (same package)."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{PATH}"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout
    spec = importlib.util.spec_from_loader("flipsketch.metrics._former_stroke_metrics", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "flipsketch.metrics"
    exec(compile(source, f"{rev}:{PATH}", "exec"), module.__dict__)
    return module


def scores(m, sketch: np.ndarray, frames: np.ndarray) -> dict[str, float]:
    """What evaluation reports of a clip (compute_all's stroke part), frames 1.. for Chamfer."""
    sk, fr = m.stroke_mask(sketch), m.stroke_mask(frames)
    return {
        "chamfer": float(np.mean([m.chamfer_distance(sk, f) for f in fr[1:]])),
        "motion": m.motion_magnitude(frames),
        "frame0_iou": m.stroke_iou(sk, fr[0]),
    }


def shifted_chamfer(m, sketches: list[np.ndarray]) -> dict[str, float]:
    masks = [m.stroke_mask(s) for s in sketches]
    return {
        "chamfer": float(np.mean([m.chamfer_distance(k, np.roll(k, (2, 2), (0, 1))) for k in masks])),
        "iou": float(np.mean([m.stroke_iou(k, np.roll(k, (2, 2), (0, 1))) for k in masks])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default="abb3388", help="the commit whose stroke_metrics.py is 'old'")
    ap.add_argument("--clip", nargs=2, action="append", default=[], metavar=("SKETCH", "FRAMES_DIR"))
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    old = former(a.rev)
    svgs = sorted((REPO / "data_gen" / "sketches").glob("*.svg"))
    cases = {}
    for side in (64, 256):
        sk = [render_svg_file(p, size=side) for p in svgs]
        cases[f"{len(svgs)} sketches, {side} px, vs shifted 2 px"] = (shifted_chamfer, (sk,))
    for svg, folder in a.clip:
        frames = np.stack(
            [np.asarray(Image.open(p).convert("L")) for p in sorted(Path(folder).glob("*.png"))]
        )
        side = frames.shape[1]
        seed = Path(folder).parent.name if Path(folder).name == "frames" else Path(folder).name
        name = f"{Path(svg).stem} {seed}"
        cases[f"{name}, {side} px raw (eval)"] = (scores, (render_svg_file(svg, size=side), frames))
        big = binarize(frames, 4)
        cases[f"{name}, {4 * side} px binarised (written)"] = (
            scores,
            (render_svg_file(svg, size=4 * side), big),
        )
    print(f"old: {a.rev}:{PATH}; new: the working tree")
    print("| case | metric | old | new | new - old | old s | new s | old / new |")
    print("|---|---|---|---|---|---|---|---|")
    for case, (fn, args) in cases.items():
        best = {"old": float("inf"), "new": float("inf")}
        out = {}
        for _ in range(a.repeats):
            for label, m in (("old", old), ("new", new)):
                t = time.perf_counter()
                out[label] = fn(m, *args)
                best[label] = min(best[label], time.perf_counter() - t)
        for k, (metric, v_old) in enumerate(out["old"].items()):
            v_new = out["new"][metric]
            timing = (
                f"{best['old']:.3f} | {best['new']:.3f} | {best['old'] / best['new']:.1f}x"
                if k == 0
                else "| |"
            )
            print(f"| {case} | {metric} | {v_old:.6f} | {v_new:.6f} | {v_new - v_old:+.2e} | {timing} |")


if __name__ == "__main__":
    main()
