"""Benchmark: torch thread counts on this machine as it is, and with its cores kept busy.

A default `flipsketch-animate` sample (model tiny_pretrained, its sampler preset tiny_world, seed 0)
timed in one process with 1 thread, 2 threads and the count `flipsketch.threads` picks ("auto"),
interleaved (1, 2, auto, 1, 2, auto, ...) so that changes in the machine's load hit every count
alike; first as the machine is ("as is"), then with `--busy` extra busy-loop processes running.
Whether each count's frames equal the first (1-thread) run's is reported. Prints one Markdown table (docs/benchmarks.md).

  python experiments/bench_threads.py --repeats 3 --busy 1
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--busy", type=int, default=1, help="busy-loop processes of the busy condition")
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--overrides", nargs="*", default=[], help="flipsketch-animate overrides")
    args = ap.parse_args()

    from flipsketch.cli import compose_config, with_model_sampler
    from flipsketch.config import register_configs
    from flipsketch.flipbook import build_components, validate_request
    from flipsketch.pipeline import FlipSketchPipeline
    from flipsketch.threads import auto_threads, available_cores, busy_cores

    register_configs()
    from PIL import Image, ImageDraw

    from flipsketch.sketch import load_sketch  # noqa: F401 - the request loads the sketch

    sketch = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(sketch).ellipse((16, 16, 48, 48), outline="black", width=2)
    path = "/tmp/bench_threads_sketch.png"
    sketch.save(path)
    argv = with_model_sampler("animate", [f"sketch={path}", "prompt=a ball bouncing", *args.overrides])
    cfg = compose_config("animate", argv)
    req = validate_request(cfg)
    comps = build_components(cfg, req)
    pipe = FlipSketchPipeline(comps, req.sampler)
    pipe(req.image, req.prompt, seeds=[0], config=req.sampler, num_inference_steps=1)  # warm up

    rows, ref = [], None
    for cond in ("as is", f"+{args.busy} busy loop" + ("s" if args.busy > 1 else "")):
        procs = []
        if cond != "as is":
            procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
            time.sleep(2.0)
        try:
            cores, busy = available_cores(), busy_cores()
            auto = auto_threads(cores, busy)
            times: dict[str, list[float]] = {}
            identical: dict[str, bool] = {}
            for _ in range(args.repeats):
                for label, n in [*((str(c), c) for c in args.counts), (f"auto ({auto})", auto)]:
                    torch.set_num_threads(n)
                    t0 = time.perf_counter()
                    out = pipe(req.image, req.prompt, seeds=[0], config=req.sampler)
                    times.setdefault(label, []).append(time.perf_counter() - t0)
                    if ref is None:
                        ref = out.frames
                    same = bool((out.frames == ref).all())
                    identical[label] = identical.get(label, True) and same
                    print(
                        f"  {cond}, {label}: {times[label][-1]:.1f} s (frames as 1 thread's: {same})",
                        flush=True,
                    )
        finally:
            for p in procs:
                p.kill()
                p.wait()
        best = min(statistics.median(v) for v in times.values())
        for label, v in times.items():
            rows.append(
                (
                    cond,
                    f"{cores} cores, {busy:.1f} busy",
                    label,
                    v,
                    statistics.median(v) / best,
                    identical[label],
                )
            )
    print(f"torch {torch.__version__}, overrides {args.overrides or 'none'}, repeats {args.repeats}")
    print(
        "| machine | seen at start | threads | median s | min s | x best | frames = 1 thread's |\n"
        "|---|---|---|---|---|---|---|"
    )
    for cond, seen, label, v, ratio, same in rows:
        print(
            f"| {cond} | {seen} | {label} | {statistics.median(v):.1f} | {min(v):.1f} | {ratio:.2f} | {same} |"
        )


if __name__ == "__main__":
    main()
