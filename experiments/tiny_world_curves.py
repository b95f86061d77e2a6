"""Does the tiny world's base get sharp enough for FlipSketch's composition to act? Curves over training.

    python experiments/tiny_world_curves.py --snapshots /work/tiny_world_run/snapshots --offset 1736

For every base snapshot (`state.safetensors` of `python -m flipsketch.tiny_world --stage base`, copied
at the entropy probe points; `step<N>.safetensors`) and for the shipped base itself (no snapshot: the
weights in the package), this measures, on the base alone (no sketch LoRA, so every checkpoint is
judged the same way):

* attention entropy / log(sequence length) of spatial and temporal self-attention (attn1) and of
  the cross-attention to the prompt (attn2), EMA weights, t = 500, two fixed doodle clips;
* the composition effect at the paper's settings scaled to 10 steps (official logit form of lambda,
  denominator 50, composition while i <= tau2, alignment 5 Adam steps at 3x the paper's lr): stroke
  Chamfer to the sketch (frames 1..) without composition minus with it, and the mean absolute pixel
  difference between the two videos, on held-out sketches x seeds;
* the prompt effect: the mean absolute pixel difference between plain text-to-video samples of the
  same seed under two prompts naming different motions.

Writes curves.json and curves.png (both against cumulative base steps: `--offset` is the shipped
base's step count, the steps it had before the snapshots' run began) to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

SKETCHES = ("cat", "fish", "bird", "car")
PROMPT_PAIR = ("a doodle of a cat spinning", "a doodle of a cat flying across the sky")


def attention_entropies(unet, text, vae, tok, sf: float) -> dict[str, float]:
    """Spatial / temporal self-attention and cross-attention entropy ratios (1 = uniform)."""
    from diffusers import DDPMScheduler

    from flipsketch.models.encode import encode_images, encode_prompt
    from flipsketch.models.tiny import MODELSCOPE_SCHEDULER
    from flipsketch.tiny_world.arch import FRAMES
    from flipsketch.tiny_world.domains import render_domain

    x, caps = render_domain("doodles", [123_456_789, 987_654_321], FRAMES)
    sched = DDPMScheduler(**{k: v for k, v in MODELSCOPE_SCHEDULER.items() if k != "set_alpha_to_one"})
    ratios: dict[str, list[float]] = {"spatial": [], "temporal": [], "cross": []}
    hooks = []
    for name, mod in unet.named_modules():
        if not hasattr(mod, "head_to_batch_dim"):
            continue
        if name.endswith("attn2") and ".attentions." in name and "temp_attentions" not in name:
            kind = "cross"
        elif name.endswith("attn1") and (name.startswith("transformer_in") or "temp_attentions" in name):
            kind = "temporal"
        elif name.endswith("attn1") and ".attentions." in name:
            kind = "spatial"
        else:
            continue

        def hook(m, args, kwargs, out, kind=kind):
            h = args[0] if args else kwargs["hidden_states"]
            ctx = kwargs.get("encoder_hidden_states")
            ctx = h if ctx is None else ctx
            q, k = m.head_to_batch_dim(m.to_q(h)), m.head_to_batch_dim(m.to_k(ctx))
            p = m.get_attention_scores(q, k, None).float()
            ent = -(p * p.clamp_min(1e-12).log()).sum(-1).mean()
            ratios[kind].append(float(ent / math.log(p.shape[-1])))

        hooks.append(mod.register_forward_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            z = encode_images(vae, x.flatten(0, 1), sf)
            z = z.unflatten(0, (2, FRAMES)).permute(0, 2, 1, 3, 4)
            t = torch.full((2,), 500)
            zt = sched.add_noise(z, torch.randn(z.shape, generator=torch.Generator().manual_seed(0)), t)
            unet(zt, t, encoder_hidden_states=encode_prompt(tok, text, caps, "cpu"))
    finally:
        for h in hooks:
            h.remove()
    return {k: sum(v) / len(v) for k, v in ratios.items() if v}


def load_snapshot(pipe, path: Path | None) -> None:
    from safetensors.torch import load_file

    if path is None:
        return
    tensors = load_file(str(path))
    for prefix, module in (("ema_unet.", pipe.unet), ("ema_text.", pipe.text_encoder)):
        module.load_state_dict({n[len(prefix) :]: t for n, t in tensors.items() if n.startswith(prefix)})


def sample_effects(pipe, seeds: list[int], align_lr: float) -> dict[str, float]:
    from PIL import Image

    from data_gen.raster import render_svg_file
    from flipsketch.ink import binarize
    from flipsketch.metrics.stroke_metrics import sketch_chamfer

    sketch_dir = Path(__file__).resolve().parents[1] / "data_gen" / "sketches"
    captions = json.loads((sketch_dir / "captions.json").read_text())
    common = dict(lambda_mode="logit", lambda_denominator=50.0, align_lr=align_lr, align_iters=5)
    d_chamfer, d_pixels, c_full, c_plain = [], [], [], []
    for name in SKETCHES:
        sketch = render_svg_file(sketch_dir / f"{name}.svg", pipe.resolution)
        img = Image.fromarray(sketch).convert("RGB")
        prompt = captions[name] if isinstance(captions.get(name), str) else captions[name][0]
        for seed in seeds:
            vids = {}
            for comp in (True, False):
                out = pipe(
                    prompt,
                    image=img,
                    generator=torch.Generator().manual_seed(seed),
                    output_type="uint8",
                    compose_spatial=comp,
                    compose_temporal=comp,
                    **common,
                )
                vids[comp] = binarize(np.asarray(out.frames[0]))
            ch = {c: sketch_chamfer(sketch, v, skip_first=True) for c, v in vids.items()}
            d_chamfer.append(ch[False] - ch[True])
            c_full.append(ch[True])
            c_plain.append(ch[False])
            d_pixels.append(float(np.abs(vids[True].astype(float) - vids[False].astype(float)).mean()))
    plain = []
    for seed in seeds:
        outs = [
            np.asarray(
                pipe(
                    p,
                    image=None,
                    generator=torch.Generator().manual_seed(seed),
                    output_type="uint8",
                    reference_frame=False,
                ).frames[0],
                dtype=float,
            )
            for p in PROMPT_PAIR
        ]
        plain.append(float(np.abs(outs[0] - outs[1]).mean()))

    def mse(v):
        v = np.asarray(v, dtype=float)
        return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0

    return {
        "chamfer_full": mse(c_full),
        "chamfer_no_composition": mse(c_plain),
        "composition_chamfer_gain": mse(d_chamfer),
        "composition_pixel_change": mse(d_pixels),
        "prompt_pixel_change": mse(plain),
    }


def plot(rows: list[dict], out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = [r["step"] for r in rows]
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    a, b = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for kind in ("spatial", "temporal", "cross"):
        a.plot(steps, [r["entropy"].get(kind, float("nan")) for r in rows], marker="o", label=kind)
    a.set_xlabel("base training steps (cumulative)")
    a.set_ylabel("attention entropy / log(n)   (1 = uniform)")
    a.legend()
    a.set_title("attention sharpness")
    for key, label in (
        ("composition_chamfer_gain", "Chamfer w/o comp. - with (px)"),
        ("composition_pixel_change", "|full - w/o comp.| (grey levels)"),
        ("prompt_pixel_change", "|prompt A - prompt B|, plain T2V (grey levels)"),
    ):
        m = [r["effects"][key][0] for r in rows]
        e = [1.96 * r["effects"][key][1] for r in rows]
        b.errorbar(steps, m, yerr=e, marker="o", capsize=3, label=label)
    b.axhline(0, color="grey", lw=0.5)
    b.set_xlabel("base training steps (cumulative)")
    b.set_title("what composition and the prompt change (95% intervals)")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshots", type=Path, required=True, help="folder of step<N>.safetensors")
    p.add_argument("--offset", type=int, default=1736, help="the shipped base's steps before the snapshots")
    p.add_argument("--every", type=int, default=1, help="use every k-th snapshot")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--align-lr", type=float, default=3e-3, help="frame alignment lr (paper: 1e-3)")
    p.add_argument("--no-samples", action="store_true", help="entropy only (seconds per snapshot)")
    p.add_argument("--out", type=Path, default=Path("logs/tiny_world_curves"))
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from flipsketch.api import FlipSketchPipeline

    snaps = sorted(a.snapshots.glob("step*.safetensors"), key=lambda s: int(re.findall(r"\d+", s.name)[-1]))
    todo = [(a.offset, None)] + [
        (a.offset + int(re.findall(r"\d+", s.name)[-1]), s) for s in snaps[:: a.every]
    ]
    a.out.mkdir(parents=True, exist_ok=True)
    done = {}
    if (a.out / "curves.json").exists():
        done = {r["step"]: r for r in json.loads((a.out / "curves.json").read_text())}
    pipe = FlipSketchPipeline.from_pretrained("tiny_pretrained", sketch_lora=False, sampler="tiny_world")
    rows = []
    for step, snap in todo:
        if step in done and (a.no_samples or "composition_chamfer_gain" in done[step]["effects"]):
            rows.append(done[step])
            continue
        t0 = time.time()
        load_snapshot(pipe, snap)
        if snap is None:  # the shipped base: reload without the LoRA (load_snapshot left it as built)
            pipe = FlipSketchPipeline.from_pretrained(
                "tiny_pretrained", sketch_lora=False, sampler="tiny_world"
            )
        sf = float(pipe.vae.config.scaling_factor)
        ent = attention_entropies(pipe.unet, pipe.text_encoder, pipe.vae, pipe.tokenizer, sf)
        eff = {} if a.no_samples else sample_effects(pipe, a.seeds, a.align_lr)
        row = {"step": step, "snapshot": None if snap is None else snap.name, "entropy": ent, "effects": eff}
        rows.append(row)
        print(json.dumps(row), f"({time.time() - t0:.0f} s)", flush=True)
        (a.out / "curves.json").write_text(
            json.dumps(rows + [r for s, r in done.items() if s > step], indent=1)
        )
    rows.sort(key=lambda r: r["step"])
    (a.out / "curves.json").write_text(json.dumps(rows, indent=1))
    if not a.no_samples:
        plot(rows, a.out / "curves.png")
    print(f"wrote {a.out / 'curves.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
