"""Benchmark: FlipSketch sampling cost relative to plain text-to-video sampling, side by side.

The "two calls" rows run the reference and main streams as separate UNet calls
(sampler.batch_streams=false); the rows above them batch them where frame counts are equal (step 0;
every reference step with reference_decay=false); the last lines print the batched/two-call ratios.

The "sketch reused" rows are the second seed of a sketch through FlipSketchPipeline(reuse=True)
(flipsketch-eval's pipeline): inversion, prompt embeddings and the reference stream come from the
sketch's first call (made before the timing), outputs bit-identical.

Rounds are interleaved (every row once per round) and each row's median is reported.
Every row runs on the same model, seeds, steps, frames and guidance, in one process, so the
ratios are comparable. "plain" is text-to-video with no reference (sampler.reference_frame=false).

  python experiments/bench_sampling.py                      # tiny model, paper settings
  python experiments/bench_sampling.py --model modelscope_random --steps 3 --tau1 2 --tau2 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import yaml

from flipsketch.config import SamplerConfig
from flipsketch.models import build_model
from flipsketch.peak_memory import PeakMemory
from flipsketch.pipeline import FlipSketchPipeline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="registry name (tiny, modelscope_random, modelscope)")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--tau1", type=int, default=10)
    ap.add_argument("--tau2", type=int, default=15)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument(
        "--try",
        dest="tries",
        nargs="*",
        default=[],
        metavar="KEY=VALUE,...",
        help="extra alignment schedules to time beside sampler=fast, e.g. align_iters=1,align_lr=0.01",
    )
    ap.add_argument(
        "--only",
        default=None,
        help="row names (or words in them) separated by '|': time only those rows, beside plain",
    )
    ap.add_argument("--repeats", type=int, default=1, help="rounds; each round times every row once")
    ap.add_argument("--resolution", type=int, default=None, help="model resolution (default: the model's)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    comps = build_model(args.model, **({"resolution": args.resolution} if args.resolution else {})).to(
        args.device
    )
    dtype = torch.float16 if args.device.startswith("cuda") else torch.float32
    comps.to(dtype=dtype)
    pipe = FlipSketchPipeline(comps, device=args.device)
    from PIL import Image, ImageDraw

    r = comps.resolution
    sketch = Image.new("RGB", (r, r), "white")
    ImageDraw.Draw(sketch).ellipse(
        (r // 4, r // 4, 3 * r // 4, 3 * r // 4), outline="black", width=max(1, r // 32)
    )
    base = dict(num_frames=args.frames, num_inference_steps=args.steps, tau1=args.tau1, tau2=args.tau2)
    fast = _preset("fast")
    fast_name = "sampler=fast: " + ", ".join(f"{k} {v}" for k, v in fast.items())
    variants = {
        "plain text-to-video": dict(reference_frame=False),
        "flipsketch, align off": dict(align=False),
        "flipsketch, align off, two calls": dict(align=False, batch_streams=False),
        "flipsketch, align off, no decay": dict(align=False, reference_decay=False),
        "flipsketch, align off, no decay, two calls": dict(
            align=False, reference_decay=False, batch_streams=False
        ),
        "official structure, align off": dict(align=False, faithful={"reference_cfg_pass": True}),
        fast_name: fast,
        **{f"try {t}": _parse_try(t) for t in args.tries},
        # the second seed (or method, or prompt) of a sketch with FlipSketchPipeline(reuse=True), as
        # flipsketch-eval samples: inversion, prompts and the reference stream taken from the first
        REUSED + "align off": dict(align=False),
        REUSED + "sampler=fast": fast,
        PAPER: dict(align_iters=10, align_lr=1e-3),
        "official structure, align 10x (faithful)": dict(
            align_iters=10,
            faithful={"reference_cfg_pass": True, "align_bf16": False, "align_drop_last_update": True},
        ),
    }
    reuse_pipe = FlipSketchPipeline(comps, device=args.device, reuse=True)
    pipe(
        sketch,
        "warm up",
        seeds=args.seeds,
        config=SamplerConfig.from_dict({**base, "num_inference_steps": 1, "tau1": 1, "tau2": 0}),
    )
    if args.only:
        keep = {next(iter(variants))}  # plain: the ratios' denominator
        for w in (w.strip() for w in args.only.split("|") if w.strip()):
            keep |= {w} if w in variants else {k for k in variants if w in k}
        variants = {k: v for k, v in variants.items() if k in keep}
    # interleaved rounds: every row once per round, so a change in the machine's load hits all rows
    for name, over in variants.items():  # the sketch's first call, not timed
        if name.startswith(REUSED):
            reuse_pipe(
                sketch,
                "a ball bouncing",
                seeds=[s + 1 for s in args.seeds],
                config=SamplerConfig.from_dict({**base, **over}),
            )
    times: dict[str, list[float]] = {name: [] for name in variants}
    peaks: dict[str, int] = dict.fromkeys(variants, 0)
    last: dict[str, object] = {}
    for r in range(args.repeats):
        for name, over in variants.items():
            cfg = SamplerConfig.from_dict({**base, **over})
            with PeakMemory(args.device.startswith("cuda")) as mem:
                t0 = time.perf_counter()
                runner = reuse_pipe if name.startswith(REUSED) else pipe
                out = runner(sketch, "a ball bouncing", seeds=args.seeds, config=cfg, measure_alignment=True)
                # the measuring forward of the final alignment loss is not part of the method
                sec = time.perf_counter() - t0 - out.stats.get("measure_seconds", 0.0)
            times[name].append(sec)
            peaks[name] = max(peaks[name], mem.peak)
            last[name] = out
            print(f"  round {r + 1}, {name}: {sec:.2f} s", flush=True)
    rows = [
        (
            name,
            statistics.median(times[name]),
            peaks[name],
            last[name].stats.get("align_final_loss"),
            last[name].stats["unet_calls"]["total"],
        )
        for name in variants
    ]
    plain = rows[0][1]
    print(
        f"model={args.model} device={args.device} steps={args.steps} frames={args.frames} "
        f"tau1={args.tau1} tau2={args.tau2} seeds={args.seeds} torch={torch.__version__} threads={torch.get_num_threads()}"
    )
    paper_loss = next((r[3] for r in rows if r[0] == PAPER), None)
    print(
        "| variant | median s | x plain | peak MiB | final align loss | x paper loss | UNet calls |\n"
        "|---|---|---|---|---|---|---|"
    )
    for name, sec, peak, loss, calls in rows:
        loss_s = "-" if loss is None else f"{loss:.5f}"
        rel = "-" if loss is None or not paper_loss else f"{loss / paper_loss:.4f}"
        print(f"| {name} | {sec:.2f} | {sec / plain:.2f} | {peak / 2**20:.0f} | {loss_s} | {rel} | {calls} |")
    by = {r[0]: r[1] for r in rows}
    for batched in ("flipsketch, align off", "flipsketch, align off, no decay"):
        if batched in by and batched + ", two calls" in by:
            print(f"batched / two calls, {batched}: {by[batched] / by[batched + ', two calls']:.3f}")


PAPER = "flipsketch, align 10x lr 1e-3 (paper)"
REUSED = "sketch reused (2nd seed): "


def _preset(name: str) -> dict:
    """What conf/sampler/<name>.yaml changes from the paper's defaults (the rows time what ships)."""
    from pathlib import Path

    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(
        OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "sampler" / f"{name}.yaml")
    )
    raw.pop("defaults", None)
    return raw


def _parse_try(text: str) -> dict:
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        out[key.strip()] = yaml.safe_load(value)
    return out


if __name__ == "__main__":
    main()
