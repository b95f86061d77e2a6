"""One-run speed check on a GPU: sampling variants side by side and a LoRA training step.

    bash experiments/device_check.sh OUT_DIR                    # GPU: modelscope_random, 256 px, bf16 + fp16
    python experiments/device_check.py --out OUT --device cpu --tiny   # the same script on CPU, tiny settings

Per dtype, on one model build (the real 1.4B ModelScope architecture with random weights, 256 px,
10 frames, 25 DDIM steps, one sample): plain text-to-video; FlipSketch with alignment off, its
streams in two calls (the default) and batched (`sampler.batch_streams=true`); `sampler=fast` (3 alignment iterations); the
paper's alignment (10 iterations). Each: seconds (after one short warm-up call), peak GPU memory
(torch.cuda.max_memory_allocated; on the CPU peak RSS growth), UNet calls and frame-passes. Then
one LoRA training step (`LoRAVideoModule.diffusion_loss` + AdamW) with and without activation
checkpointing: s/step (median of the timed steps) and peak memory.

Budget guard: a variant whose estimated time (its UNet frame-passes times the seconds per
frame-pass of plain sampling, x1.5) would pass --budget-s is skipped with a note; results.json and
results.md are rewritten after every measurement, so whatever ran is kept.
"""

from __future__ import annotations

import argparse
import copy
import gc
import statistics
import sys
import time
from pathlib import Path

import torch

from flipsketch.peak_memory import PeakMemory

GOALS = {"align_off_x_plain": 1.2, "fast_x_plain": 4.0, "align_off_seconds": 3.0}


def settings(a) -> dict:
    if a.tiny:
        return dict(model="tiny", resolution=64, frames=4, steps=4, train_frames=4)
    return dict(model="modelscope_random", resolution=256, frames=10, steps=25, train_frames=10)


def variants() -> dict[str, dict]:
    return {
        "plain text-to-video": dict(reference_frame=False),
        "flipsketch, align off": dict(align=False),
        "flipsketch, align off, batched": dict(align=False, batch_streams=True),
        "sampler=fast (align 1x)": dict(align_iters=1, align_lr=1e-2),
        "paper alignment (10x)": dict(align_iters=10, align_lr=1e-3),
    }


def frame_passes(cfg, samples: int) -> int:
    """The sampling loop's cost in UNet frame-passes (what the progress bar counts)."""
    from flipsketch.denoise import Schedule
    from flipsketch.progress import Progress

    return Progress(False, cfg, samples, Schedule.of(cfg, cfg.num_inference_steps)).total or 1


class Report:
    def __init__(self, out: Path, meta: dict, t0: float):
        self.out, self.t0 = out, t0
        self.data = {"meta": meta, "sampling": [], "training": [], "notes": []}
        out.mkdir(parents=True, exist_ok=True)

    def write(self) -> None:
        from flipsketch.evaluation.evaluator import write_json_atomic

        self.data["meta"]["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        write_json_atomic(self.out / "results.json", self.data)
        (self.out / "results.md").write_text(self.markdown())

    def markdown(self) -> str:
        m = self.data["meta"]
        lines = [
            f"Device check: {m['device_name']}, model={m['model']} {m['resolution']} px, "
            f"{m['frames']} frames, {m['steps']} steps, 1 sample, torch {m['torch']} "
            f"({m['elapsed_s']} s in all)",
            "",
            "| dtype | variant | seconds | x plain | peak MiB | UNet calls | frame-passes |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.data["sampling"]:
            lines.append(
                f"| {r['dtype']} | {r['variant']} | {r['seconds']:.2f} | {r['x_plain']:.2f} | "
                f"{r['peak_gib'] * 1024:.0f} | {r['unet_calls']} | {r['unet_frames']} |"
            )
        if self.data["training"]:
            lines += [
                "",
                "| dtype | LoRA training step | s/step | peak MiB | MiB above the model |",
                "|---|---|---|---|---|",
            ]
            for r in self.data["training"]:
                ck = "activation checkpointing" if r["checkpointing"] else "no checkpointing"
                lines.append(
                    f"| {r['dtype']} | {ck} | {r['step_s']:.3f} | {r['peak_gib'] * 1024:.0f} | "
                    f"{r['above_model_gib'] * 1024:.0f} |"
                )
        goals = self.data.get("goals")
        if goals:
            lines += ["", "Goals (issue 18): " + "; ".join(f"{k}: {v}" for k, v in goals.items())]
        if self.data["notes"]:
            lines += ["", *[f"- {n}" for n in self.data["notes"]]]
        return "\n".join(lines) + "\n"


def sampling(pipe, sketch, dtype_name: str, s: dict, a, report: Report, deadline: float, cuda: bool):
    from flipsketch.config import SamplerConfig

    base = dict(num_frames=s["frames"], num_inference_steps=s["steps"])
    warm = SamplerConfig.from_dict({**base, "num_inference_steps": 2, "align_iters": 1})
    pipe(sketch, "warm up", seeds=[0], config=warm, output_type="latent")  # kernels, allocator
    rows, per_pass = {}, None
    for name, over in variants().items():
        cfg = SamplerConfig.from_dict({**base, **over})
        passes = frame_passes(cfg, 1)
        estimate = None if per_pass is None else 1.5 * passes * per_pass
        if estimate is not None and time.perf_counter() + estimate > deadline:
            report.data["notes"].append(
                f"{dtype_name} {name}: skipped, estimated {estimate:.0f} s would pass the {a.budget_s:.0f} s budget"
            )
            report.write()
            continue
        with PeakMemory(cuda) as mem:
            t = time.perf_counter()
            out = pipe(sketch if cfg.reference_frame else None, "a ball bouncing", seeds=[0], config=cfg)
            if cuda:
                torch.cuda.synchronize()
            sec = time.perf_counter() - t
        peak = mem.peak if cuda else mem.growth  # CUDA: all allocated (model included); CPU: RSS growth
        if per_pass is None:
            per_pass = sec / passes
        rows[name] = sec
        plain = rows.get("plain text-to-video", sec)
        report.data["sampling"].append(
            dict(
                dtype=dtype_name,
                variant=name,
                seconds=sec,
                x_plain=sec / plain,
                peak_gib=peak / 2**30,
                unet_calls=out.stats["unet_calls"]["total"],
                unet_frames=out.stats["unet_frames"],
                batched_steps=out.stats["batched_steps"],
            )
        )
        print(f"  {dtype_name} {name}: {sec:.2f} s, peak {peak / 2**30:.2f} GiB", flush=True)
        report.write()
    return rows


def training(comps, dtype, dtype_name: str, s: dict, a, report: Report, deadline: float, cuda: bool):
    """One LoRA step (rank 4, attention projections) with and without activation checkpointing.
    Adds LoRA layers to the UNet in place: run it after the sampling checks."""
    from flipsketch.models.activation_checkpointing import (
        disable_block_checkpointing,
        enable_block_checkpointing,
    )
    from flipsketch.training.module import LoRAVideoModule

    device = next(comps.unet.parameters()).device
    comps.to(dtype=torch.float32 if dtype == torch.float32 else None)
    half = dtype in (torch.float16, torch.bfloat16)
    module = LoRAVideoModule(
        comps,
        optimizer=lambda p: torch.optim.AdamW(p, lr=1e-4),
        frozen_dtype={torch.float16: "float16", torch.bfloat16: "bfloat16"}.get(dtype),
    ).to(device)
    module.train()
    opt = torch.optim.AdamW(module.lora_params(), lr=1e-4)
    h = comps.latent_size
    batch = {
        "latents": torch.randn(1, 4, s["train_frames"], h, h, device=device),
        "caption": ["a cat jumping playfully"],
        "sample": torch.arange(1),
    }

    def step(i):
        with torch.autocast(device.type, dtype=dtype, enabled=half):
            loss = module.diffusion_loss(batch, (0, abs(i)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()

    for ckpt in (False, True):
        if time.perf_counter() > deadline:
            report.data["notes"].append(
                f"{dtype_name} training (checkpointing={ckpt}): skipped, budget spent"
            )
            report.write()
            continue
        (enable_block_checkpointing if ckpt else disable_block_checkpointing)(module.unet)
        step(-1)  # warm-up
        gc.collect()
        base = torch.cuda.memory_allocated() if cuda else 0
        times = []
        with PeakMemory(cuda) as mem:
            for i in range(a.train_steps):
                t = time.perf_counter()
                step(i + 1)
                times.append(time.perf_counter() - t)
        peak = mem.peak if cuda else mem.growth  # CUDA: all allocated (model included); CPU: RSS growth
        report.data["training"].append(
            dict(
                dtype=dtype_name,
                checkpointing=ckpt,
                step_s=statistics.median(times),
                peak_gib=peak / 2**30,
                above_model_gib=(peak - base) / 2**30,
            )
        )
        print(
            f"  {dtype_name} training checkpointing={ckpt}: {statistics.median(times):.3f} s/step", flush=True
        )
        report.write()
    disable_block_checkpointing(module.unet)


def goals(report: Report) -> dict:
    out = {}
    for dt in sorted({r["dtype"] for r in report.data["sampling"]}):
        rows = {r["variant"]: r for r in report.data["sampling"] if r["dtype"] == dt}
        off, fast = rows.get("flipsketch, align off"), rows.get("sampler=fast (align 3x)")
        batched = rows.get("flipsketch, align off, batched")
        if off:
            out[f"{dt} align off x plain <= {GOALS['align_off_x_plain']}"] = f"{off['x_plain']:.2f}"
            out[f"{dt} align off seconds <= {GOALS['align_off_seconds']} (H100-class)"] = (
                f"{off['seconds']:.2f}"
            )
        if fast:
            out[f"{dt} fast x plain <= {GOALS['fast_x_plain']}"] = f"{fast['x_plain']:.2f}"
        if off and batched:
            out[f"{dt} batched / two calls"] = f"{batched['seconds'] / off['seconds']:.3f}"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for results.json and results.md")
    ap.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cuda", "cpu"]
    )
    ap.add_argument("--tiny", action="store_true", help="model=tiny, 64 px, 4 frames, 4 steps (a CPU test)")
    ap.add_argument("--dtypes", nargs="+", default=None, help="default: bf16 fp16 on cuda, fp32 on cpu")
    ap.add_argument("--budget-s", type=float, default=450.0, help="stop starting measurements after this")
    ap.add_argument("--train-steps", type=int, default=2, help="timed LoRA steps per setting")
    ap.add_argument("--no-train", action="store_true", help="sampling only")
    a = ap.parse_args(argv)
    from PIL import Image, ImageDraw

    from flipsketch.errors import UserError
    from flipsketch.models import build_model
    from flipsketch.models.loaders import resolve_dtype
    from flipsketch.pipeline import FlipSketchPipeline

    t0 = time.perf_counter()
    deadline = t0 + a.budget_s
    cuda = a.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device here (use --device cpu --tiny)")
    dtypes = a.dtypes or (["bf16", "fp16"] if cuda else ["fp32"])
    s = settings(a)
    report = Report(
        Path(a.out),
        dict(
            device_name=torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)",
            torch=torch.__version__,
            dtypes=dtypes,
            budget_s=a.budget_s,
            **s,
        ),
        t0,
    )
    comps = build_model(s["model"], resolution=s["resolution"])
    comps.to(a.device)
    r = s["resolution"]
    sketch = Image.new("RGB", (r, r), "white")
    ImageDraw.Draw(sketch).ellipse(
        (r // 4, r // 4, 3 * r // 4, 3 * r // 4), outline="black", width=max(1, r // 32)
    )
    for name in dtypes:
        dtype = resolve_dtype(name)
        comps.to(dtype=dtype)
        print(f"{name}:", flush=True)
        pipe = FlipSketchPipeline(comps, device=a.device)
        sampling(pipe, sketch, name, s, a, report, deadline, cuda)
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    report.data["goals"] = goals(report)
    report.write()
    if not a.no_train:  # after sampling: LoRA layers go into the UNet in place (of a copy but the last)
        for k, name in enumerate(dtypes):
            last = k == len(dtypes) - 1
            if last:
                del pipe
            training(
                comps if last else copy.deepcopy(comps),
                resolve_dtype(name),
                name,
                s,
                a,
                report,
                deadline,
                cuda,
            )
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
    report.write()
    print((Path(a.out) / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
