"""Training-step time and peak memory of LoRA fine-tuning, with and without activation checkpointing.

    python experiments/bench_train.py                      # model=tiny (seconds)
    python experiments/bench_train.py --modelscope         # + model=modelscope_random, batch 1, 8 frames,
                                                           #   256x256 (about a minute per step on 2 CPU cores)
    python experiments/bench_train.py --device cuda --precision 16-mixed --modelscope

One step = text encoder + UNet3D forward/backward on cached-latent-shaped input + AdamW on the LoRA
weights (rank 4 on the attention projections), i.e. `LoRAVideoModule.diffusion_loss` as in training.
Each configuration runs in its own process so peak memory is its own: peak RSS above the
RSS of the built model on the CPU (sampled every 2 ms,
warm-up step included), torch.cuda.max_memory_allocated on a GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from flipsketch.config import MIXED_PRECISIONS
from flipsketch.peak_memory import PeakMemory


def worker(args) -> dict:
    import torch

    from flipsketch.models import build_model
    from flipsketch.training.module import LoRAVideoModule

    torch.manual_seed(0)
    kw = {"resolution": 256} if args.model == "modelscope_random" else {}
    comps = build_model(args.model, **kw)
    device = torch.device(args.device)
    module = LoRAVideoModule(
        comps,
        optimizer=lambda p: torch.optim.AdamW(p, lr=1e-4),
        activation_checkpointing=args.checkpointing,
        frozen_dtype="float16" if args.precision == "16-mixed" and device.type == "cuda" else None,
    ).to(device)
    module.train()
    opt = torch.optim.AdamW(module.lora_params(), lr=1e-4)
    h = w = comps.latent_size
    batch = {
        "latents": torch.randn(args.batch, 4, args.frames, h, w, device=device),
        "caption": ["a cat jumping playfully"] * args.batch,
        "sample": torch.arange(args.batch),
    }
    autocast = (
        torch.autocast(device.type, dtype=torch.float16 if args.precision == "16-mixed" else torch.bfloat16)
        if args.precision != "32"
        else torch.autocast(device.type, enabled=False)
    )

    def step(i):
        with autocast:
            loss = module.diffusion_loss(batch, (0, abs(i)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return float(loss)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    with PeakMemory() as rss:  # the warm-up step counts for the peak: freed memory stays in the RSS
        for i in range(args.warmup):  # allocator, kernels
            step(-1 - i)
        for i in range(args.steps):
            t = time.perf_counter()
            step(i + 1)
            times.append(time.perf_counter() - t)
    if device.type == "cuda":
        peak, above = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_allocated() - base
    else:
        peak, above = rss.peak, rss.growth
    return {
        "model": args.model,
        "checkpointing": args.checkpointing,
        "step_s": sorted(times)[len(times) // 2],
        "peak_gib": peak / 2**30,
        "model_gib": (peak - above) / 2**30,
        "step_peak_gib": above / 2**30,
        "lora_params": sum(p.numel() for p in module.lora_params()),
        "threads": torch.get_num_threads(),
    }


def run_one(model: str, checkpointing: bool, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--model", model, "--steps", str(args.steps)]
    cmd += ["--frames", str(args.frames), "--batch", str(args.batch), "--device", args.device]
    cmd += ["--precision", args.precision]
    if args.warmup is not None:
        cmd += ["--warmup", str(args.warmup)]
    if checkpointing:
        cmd.append("--checkpointing")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{model} (checkpointing={checkpointing}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modelscope", action="store_true", help="also model=modelscope_random (slow on CPU)")
    ap.add_argument("--model", default="tiny", help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 5 tiny, 2 modelscope)")
    ap.add_argument(
        "--warmup", type=int, default=None, help="untimed steps first (default 2 tiny, 1 modelscope)"
    )
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="32", choices=["32", *MIXED_PRECISIONS])
    args = ap.parse_args()
    if args.worker:
        big = args.model == "modelscope_random"
        args.steps = args.steps or (2 if big else 10)
        args.warmup = args.warmup if args.warmup is not None else (1 if big else 2)
        print(json.dumps(worker(args)))
        return
    models = ["tiny"] + (["modelscope_random"] if args.modelscope else [])
    print(
        f"device={args.device} precision={args.precision} batch={args.batch} frames={args.frames} (median step)"
    )
    print(
        f"{'model':<18} {'checkpointing':<14} {'step s':>8} {'model GiB':>10} {'peak GiB':>9} {'above model':>12}"
    )
    for model in models:
        rows = []
        for ckpt in (False, True):
            one = argparse.Namespace(
                **{**vars(args), "steps": args.steps or (2 if model == "modelscope_random" else 10)}
            )
            r = run_one(model, ckpt, one)
            rows.append(r)
            print(
                f"{model:<18} {str(ckpt):<14} {r['step_s']:>8.3f} {r['model_gib']:>10.3f} {r['peak_gib']:>9.3f}"
                f" {r['step_peak_gib']:>12.3f}"
            )
        off, on = rows
        print(
            f"{model:<18} ratio on/off:  time x{on['step_s'] / off['step_s']:.2f}, "
            f"memory above the model x{on['step_peak_gib'] / max(off['step_peak_gib'], 1e-9):.2f}"
            f"  ({off['lora_params']:,} LoRA parameters, {off['threads']} threads)"
        )


if __name__ == "__main__":
    main()
