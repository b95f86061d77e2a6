"""Does FlipSketch visibly work on the project's own model? Evidence on held-out sketches.

    python experiments/tiny_world_evidence.py                    # `make evidence`: the demo's schedule
    python experiments/tiny_world_evidence.py --steps 25 --sampler flipsketch   # the paper's schedule

Runs `flipsketch-eval experiment=tiny_world_evidence` (model=tiny_pretrained, the shipped sketches
that no training stage ever saw, several seeds; resumable: a rerun reuses finished videos) and checks
the claims of a working sketch animator:

1. identity: in frames 1..N-1 the nearest held-out sketch (stroke Chamfer) is the sample's own
   sketch in >= 90% of frames with full FlipSketch (also reported for w/o composition and plain
   text-to-video, where the gap is the method's effect);
2. it moves: mean motion (Chamfer between consecutive frames) >= 0.5 px/frame, above the floor of a
   still drawing reconstructed through the same VAE;
3. it stays a drawing: median ink area of frames 1.. within 0.6-1.6x the sketch's;
4. frame 0 reproduces the input sketch: tolerant stroke IoU (1 px) >= 0.8;
5. lambda acts: over lambda in {0, 0.5, 1}, Chamfer to the sketch and motion both non-increasing,
   and lambda=0 vs lambda=1 apart by more than twice the standard error of their paired difference.

Prints a table with means and standard errors over sketches x seeds and the verdicts (whatever they
are), and writes evidence.json, evidence.md and contact_sheet.png (per sketch: one row per method,
the input sketch first, then the frames) to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from flipsketch.errors import report_user_errors

LAMBDA_METHODS = {"lambda0": 0.0, "lambda025": 0.25, "full": 0.5, "lambda075": 0.75, "lambda1": 1.0}
DEMO_SCHEDULE = {
    "sampler": "tiny_world",
    "steps": 10,
}  # what `make demo` samples with (src/flipsketch/demo.py)


def _mean_se(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def still_floor(comps, items, frames: int, seeds: list[int]) -> dict:
    """Motion and Chamfer of a still drawing reconstructed through the model's VAE (per-frame posterior samples)."""
    import torch

    from flipsketch.ink import binarize
    from flipsketch.metrics.stroke_metrics import motion_magnitude, sketch_chamfer
    from flipsketch.models.encode import encode_images
    from flipsketch.sketch import image_to_tensor, load_sketch

    motions, chamfers = [], []
    for item in items:
        sketch = load_sketch(item.sketch, comps.resolution)
        x = image_to_tensor(sketch).repeat(frames, 1, 1, 1)
        for seed in seeds:
            g = torch.Generator().manual_seed(seed)
            z = encode_images(comps.vae, x, None, "sample", g)  # unscaled, one posterior sample a frame
            with torch.no_grad():
                rec = comps.vae.decode(z).sample.clamp(-1, 1)
            gray = ((rec.mean(1) + 1) * 127.5).round().to(torch.uint8).numpy()
            out = binarize(gray)
            motions.append(motion_magnitude(out))
            chamfers.append(sketch_chamfer(sketch, out, skip_first=True))
    return {"motion": _mean_se(motions), "chamfer": _mean_se(chamfers)}


def attention_sharpness(comps, items, t: int = 500) -> dict:
    """Mean self-attention entropy / log(sequence length) (spatial, temporal) on the held-out sketches.

    Each sketch repeated as a still 8-frame video, noised to timestep t, one UNet call with its prompt.
    """
    import torch

    from flipsketch.models.encode import encode_images, encode_prompt
    from flipsketch.sketch import image_to_tensor, load_sketch
    from flipsketch.tiny_world.diagnostics import attention_entropy

    acc: dict[str, list[float]] = {}
    for item in items:
        x = image_to_tensor(load_sketch(item.sketch, comps.resolution))
        with torch.no_grad():
            z = encode_images(comps.vae, x, comps.scaling_factor)
            z = z[:, :, None].repeat(1, 1, 8, 1, 1)
            tt = torch.tensor([t])
            zt = comps.scheduler.add_noise(
                z, torch.randn(z.shape, generator=torch.Generator().manual_seed(0)), tt
            )
            emb = encode_prompt(comps.tokenizer, comps.text_encoder, [item.prompt], max_length=77)
        for k, v in attention_entropy(comps.unet, zt, tt, emb).items():
            acc.setdefault(k, []).append(v)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def _paired_apart(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of the paired difference a - b and its standard error."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0


def heldout_sketches(items, resolution: int) -> list[np.ndarray]:
    """The benchmark's sketches as uint8 grey images at the model's resolution (read once)."""
    from flipsketch.sketch import load_sketch

    return [np.asarray(load_sketch(it.sketch, resolution).convert("L")) for it in items]


def sample_scores(rows: list[dict], items, sketches: list[np.ndarray]) -> dict[tuple[str, str, int], dict]:
    """Identity accuracy and ink ratio of every sample, read back from its PNG frames."""
    from flipsketch.baselines.frames_io import read_image_folder
    from flipsketch.ink import binarize
    from flipsketch.metrics._io import gray_frames
    from flipsketch.metrics.stroke_metrics import ink_ratio, nearest_sketch

    index = {it.id: k for k, it in enumerate(items)}
    out = {}
    for r in rows:
        # the eval folders hold raw frames: binarised here as the evaluation's scoring policy does
        frames = gray_frames(binarize(read_image_folder(Path(r["folder"]) / "frames")))  # (F, H, W) uint8
        own = index[r["item"]]
        near = nearest_sketch(frames, sketches, skip_first=True)
        out[(r["method"], r["item"], int(r["seed"]))] = {
            "identity": float((near == own).mean()),
            "ink_ratio": ink_ratio(sketches[own], frames, skip_first=True),
            "frames": frames,
        }
    return out


def write_contact_sheet(
    path: Path, items, sketches: list[np.ndarray], methods: list[str], scores: dict, seed: int
) -> Path:
    from flipsketch.pictures import contact_sheet

    blocks = []
    for it, sk in zip(items, sketches, strict=True):
        rows = []
        for m in methods:
            s = scores.get((m, it.id, seed))
            if s is not None:
                rows.append((f"{m}  id {s['identity']:.0%}", np.concatenate([sk[None], s["frames"]])))
        blocks.append((f"{it.id}: {it.prompt!r}  (seed {seed}; first column: the input sketch)", rows))
    return contact_sheet(path, blocks)


@report_user_errors
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument(
        "--sampler",
        default=DEMO_SCHEDULE["sampler"],
        help="sampler preset: tiny_world (the demo's) | fast | flipsketch (the paper's)",
    )
    p.add_argument(
        "--out", default="logs/tiny_world_evidence", help="run folder (videos are reused on rerun)"
    )
    p.add_argument(
        "--threads", default="auto", help="torch threads per process (default auto: the cores free at start)"
    )
    p.add_argument(
        "--jobs", type=int, default=1, help="sample in N processes (1 thread each), sketches split among them"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=DEMO_SCHEDULE["steps"],
        help="DDIM steps (default: the demo's 10); tau1/tau2 scale with them (paper: 25, tau1 10, tau2 15)",
    )
    p.add_argument(
        "--methods",
        default="full,no_composition,t2v_plain,lambda0,lambda1",
        help="comma-separated rows to sample: full, no_composition and t2v_plain are needed; lambda* for the sweep",
    )
    p.add_argument("--only", default=None, help=argparse.SUPPRESS)  # worker: sample these sketches, no report
    p.add_argument("overrides", nargs="*", help="extra flipsketch-eval overrides, e.g. model.path=DIR")
    a = p.parse_args(argv)
    a.methods = [m for m in a.methods.split(",") if m]
    os.environ.setdefault("WANDB_MODE", "offline")

    from flipsketch.evaluation import run_eval
    from flipsketch.threads import use_threads

    threads = use_threads(a.threads, "--threads")  # chosen once, before our own work adds to the load
    from flipsketch.evaluation.benchmark import load_benchmark

    out = Path(a.out).resolve()
    t0 = time.perf_counter()
    overrides = [
        "experiment=tiny_world_evidence",
        f"sampler={a.sampler}",
        f"methods=[{','.join(a.methods)}]",
        f"sampler.num_inference_steps={a.steps}",
        f"seeds=[{','.join(str(s) for s in a.seeds)}]",
        f"threads={threads}",
        f"paths.log_dir={out}",
        f"paths.output_dir={out}",
        *a.overrides,
    ]
    if a.only is not None:  # a worker of --jobs: its share of the sketches, then exit
        run_eval([*overrides, f"benchmark.only=[{a.only}]", "threads=1"])
        return 0
    if missing := {"full", "no_composition", "t2v_plain"} - set(a.methods):
        p.error(f"--methods needs {', '.join(sorted(missing))}")  # one line, exit code 2
    from flipsketch.cli import compose_config

    cfg = compose_config("eval", overrides)
    items = load_benchmark(cfg.benchmark, out / "benchmark")
    if a.jobs > 1:
        import subprocess

        ids = [it.id for it in items]
        share = [ids[i :: a.jobs] for i in range(a.jobs)]
        cmd = [
            sys.executable,
            __file__,
            "--seeds",
            *map(str, a.seeds),
            "--sampler",
            a.sampler,
            "--out",
            str(out),
        ]
        cmd += ["--steps", str(a.steps), "--methods", ",".join(a.methods)]
        procs = [subprocess.Popen([*cmd, "--only", ",".join(sh), *a.overrides]) for sh in share if sh]
        if any([w.wait() != 0 for w in procs]):  # a list: wait for every worker, not just the first failure
            raise SystemExit("error: a sampling worker failed (see above); rerun to resume")
    res = run_eval(overrides)  # reuses every finished video
    rows = res["rows"]
    from hydra.utils import instantiate

    res_px = int(cfg.model.resolution)
    sketches = heldout_sketches(items, res_px)
    scores = sample_scores(rows, items, sketches)
    comps = instantiate(cfg.model)  # one load for both diagnostics
    floor = still_floor(comps, items, int(cfg.sampler.num_frames), a.seeds)
    sharp = attention_sharpness(comps, items)

    keys = ("identity", "chamfer", "motion", "ink_ratio", "frame0_iou")
    by: dict[str, dict[str, list[float]]] = {}
    for r in sorted(rows, key=lambda r: (r["item"], int(r["seed"]))):
        d = by.setdefault(r["method"], {k: [] for k in keys})
        sc = scores[(r["method"], r["item"], int(r["seed"]))]
        for k in keys:
            d[k].append(float(sc[k] if k in sc else r[k]))
    stats = {m: {k: _mean_se(v) for k, v in d.items()} for m, d in by.items()}
    n = len(by["full"]["chamfer"])
    full = stats["full"]
    median_ink = float(np.median(by["full"]["ink_ratio"]))

    lam = sorted((v, m) for m, v in LAMBDA_METHODS.items() if m in stats)
    lam_motion = [stats[m]["motion"][0] for _, m in lam]
    lam_chamfer = [stats[m]["chamfer"][0] for _, m in lam]
    checks = {
        "identity: own sketch nearest in >= 90% of frames 1.. (full)": full["identity"][0] >= 0.9,
        "moves: motion >= 0.5 px/frame and above a still drawing (full)": full["motion"][0] >= 0.5
        and full["motion"][0] > floor["motion"][0],
        "stays a drawing: median ink area of frames 1.. within 0.6-1.6x the sketch's (full)": 0.6
        <= median_ink
        <= 1.6,
        "frame 0 reproduces the sketch: IoU >= 0.8 (full)": full["frame0_iou"][0] >= 0.8,
    }
    if {"lambda0", "lambda1"} <= set(stats):
        apart = {k: _paired_apart(by["lambda0"][k], by["lambda1"][k]) for k in ("chamfer", "motion")}
        checks["lambda: chamfer and motion never rise as lambda grows (0, 0.5, 1)"] = all(
            b <= a_ for seq in (lam_motion, lam_chamfer) for a_, b in zip(seq, seq[1:], strict=False)
        )
        checks["lambda: lambda=0 vs 1 apart by > 2 SE (chamfer and motion, paired)"] = all(
            abs(mu) > 2 * se for mu, se in apart.values()
        )
    else:
        apart = {}

    from omegaconf import OmegaConf

    from flipsketch.config import SamplerConfig

    taus = SamplerConfig.from_dict(OmegaConf.to_container(cfg.sampler, resolve=True)).resolved_taus()

    def fmt(ms: tuple[float, float], pct: bool = False) -> str:
        return f"{ms[0]:.1%} ± {ms[1]:.1%}" if pct else f"{ms[0]:.2f} ± {ms[1]:.2f}"

    from data_gen.build import SHIPPED_SKETCHES
    from flipsketch.evaluation.benchmark import resolve_root
    from flipsketch.tiny_world import HELDOUT_SKETCHES

    root = resolve_root(cfg.benchmark.root)
    heldout = root is not None and root.resolve() == SHIPPED_SKETCHES.resolve()
    heldout = heldout and {it.id for it in items} <= set(HELDOUT_SKETCHES)
    what = (
        "held-out sketches"
        if heldout
        else f"sketches of benchmark={cfg.benchmark.name} ({cfg.benchmark.root})"
    )
    lines = [
        f"# FlipSketch on model=tiny_pretrained: {len(items)} {what} x {len(a.seeds)} seeds "
        f"(n = {n} per row), sampler={a.sampler}, {cfg.sampler.num_inference_steps} steps "
        f"(tau1 {taus[0]}, tau2 {taus[1]}), {cfg.sampler.num_frames} frames, {res_px}px",
        "",
        f"| method | λ | identity (chance {1 / len(items):.0%}) ↑ | chamfer to sketch, frames 1.. (px) ↓ "
        "| motion (px/frame) | ink area / sketch's | frame-0 IoU ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    order = ["full", "no_composition", "t2v_plain", *[m for _, m in lam if m != "full"]]
    for m in [m for m in order if m in stats] + sorted(set(stats) - set(order)):
        s = stats[m]
        lam_v = f"{LAMBDA_METHODS[m]:g}" if m in LAMBDA_METHODS else ("-" if m == "t2v_plain" else "0.5")
        lines.append(
            f"| {m} | {lam_v} | {fmt(s['identity'], True)} | {fmt(s['chamfer'])} | {fmt(s['motion'])} "
            f"| {fmt(s['ink_ratio'])} | {fmt(s['frame0_iou'])} |"
        )
    lines.append(
        f"| still drawing through the VAE | - | - | {fmt(floor['chamfer'])} | {fmt(floor['motion'])} | - | - |"
    )
    per_item: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        if r["method"] == "full":
            sc = scores[("full", r["item"], int(r["seed"]))]
            d = per_item.setdefault(r["item"], {"identity": [], "motion": [], "chamfer": []})
            d["identity"].append(sc["identity"])
            d["motion"].append(float(r["motion"]))
            d["chamfer"].append(float(r["chamfer"]))
    lines += [
        "",
        "Per sketch (full; mean over seeds), so a mean carried by a few samples shows:",
        "",
        "| sketch | identity | motion (px/frame) | chamfer (px) |",
        "|---|---|---|---|",
        *(
            f"| {it.id} | {np.mean(d['identity']):.0%} | {np.mean(d['motion']):.2f} | {np.mean(d['chamfer']):.2f} |"
            for it in items
            if (d := per_item.get(it.id))
        ),
    ]
    lines += [
        "",
        f"median ink ratio (full): {median_ink:.2f}",
        f"median motion (full): {float(np.median(by['full']['motion'])):.2f} px/frame",
        *(f"λ=0 minus λ=1, {k}: {mu:+.3f} ± {se:.3f} (paired SE)" for k, (mu, se) in apart.items()),
        "self-attention entropy / log(sequence length) (1 = uniform, 0 = one-hot; t=500): "
        + ", ".join(f"{k} {v:.3f}" for k, v in sharp.items()),
        "",
    ]
    lines += [f"- [{'x' if ok else ' '}] {name}" for name, ok in checks.items()]
    sheet = write_contact_sheet(
        out / "contact_sheet.png", items, sketches, [m for m in order if m in stats], scores, a.seeds[0]
    )
    lines.append(
        f"\n{sum(checks.values())} of {len(checks)} claims hold; {time.perf_counter() - t0:.0f} s; contact sheet: {sheet}"
    )
    text = "\n".join(lines)
    print(text)
    (out / "evidence.md").write_text(text + "\n")
    (out / "evidence.json").write_text(
        json.dumps(
            {
                "stats": stats,
                "median_ink_ratio": median_ink,
                "median_motion": float(np.median(by["full"]["motion"])),
                "per_item_full": per_item,
                "lambda0_minus_lambda1": apart,
                "still": floor,
                "attention_entropy_ratio": sharp,
                "checks": checks,
                "overrides": overrides,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
