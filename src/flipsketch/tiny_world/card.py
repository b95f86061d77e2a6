"""MODEL_CARD.md beside the exported weights, written from the run's progress files and logs."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .arch import FRAMES, TEXT_HIDDEN
from .state import read_progress


def entropy_track(run: Path) -> str:
    """The base stage's logged attention-entropy probes, as 'step N: spatial a / temporal b; ...'."""
    log = run / "base" / "log.jsonl"
    if not log.exists():
        return "not measured"
    rows = [json.loads(x) for x in log.read_text().splitlines() if "attention_entropy" in x]
    if not rows:
        return "not measured"
    pick = rows if len(rows) <= 6 else [rows[int(i * (len(rows) - 1) / 5)] for i in range(6)]
    return "; ".join(
        f"step {r['step']}: spatial {r['attention_entropy'].get('spatial', float('nan')):.3f} / "
        f"temporal {r['attention_entropy'].get('temporal', float('nan')):.3f}"
        for r in pick
    )


def write_model_card(run: Path, out: Path) -> Path:
    """MODEL_CARD.md beside the weights: data, architecture, steps, commands, wall time, sizes."""
    from . import HELDOUT_SKETCHES
    from .doodles import PHRASES as DOODLE_PHRASES

    def stage(name: str, missing: str = "not trained yet") -> str:
        if not (run / name / "progress.json").exists():
            return missing
        p = read_progress(run / name)
        extra = f" (overrides: {' '.join(p['overrides'])})" if p.get("overrides") else ""
        return f"{p['step']} steps, {p.get('seconds', 0) / 60:.1f} min wall time{extra}"

    motion = "every program whole in the clip (a spin: one full turn in 8 frames)"
    if (run / "base" / "progress.json").exists():
        p = read_progress(run / "base")
        if p.get("motion_spans"):
            listed = ", ".join(f"{k} over {'/'.join(map(str, v))}" for k, v in p["motion_spans"].items())
            motion = (
                f"a window of {FRAMES} consecutive frames of a slower animation for {listed} frames "
                f"(other programs whole in the clip), from base step {p.get('motion_spans_since', 0)}"
                + (" (before it, every program whole in the clip)" if p.get("motion_spans_since") else "")
            )
    files = sorted(out.rglob("*.safetensors"))
    sizes = "\n".join(f"| `{f.relative_to(out)}` | {f.stat().st_size / 1e6:.2f} MB |" for f in files)
    total = sum(f.stat().st_size for f in files) / 1e6
    n_params = {}
    for sub, cls in (
        ("unet", "UNet3DConditionModel"),
        ("vae", "AutoencoderKL"),
        ("text_encoder", "CLIPTextModel"),
    ):
        f = (
            out
            / sub
            / ("diffusion_pytorch_model.safetensors" if sub != "text_encoder" else "model.safetensors")
        )
        if f.exists():
            from safetensors import safe_open

            with safe_open(str(f), framework="pt") as h:
                n_params[sub] = (cls, sum(math.prod(h.get_slice(k).get_shape()) for k in h.keys()))
    arch = "\n".join(f"| {sub} | `{cls}` | {n / 1e6:.2f} M |" for sub, (cls, n) in n_params.items())
    text = f"""# tiny_pretrained: the project's own small text-to-video model

Trained on 2 CPU cores by `make tiny-world` (the stages of `python -m flipsketch.tiny_world`).
It has the same component classes as ModelScope text-to-video-ms-1.7b, so every code path that
FlipSketch runs on the real model runs here too. Load it with `model=tiny_pretrained`.

| component | class | parameters |
|---|---|---|
{arch}
| tokenizer | `CLIPTokenizer` (CLIP BPE, built offline from open_clip's vocabulary; not stored) | - |
| scheduler | `DDIMScheduler` (ModelScope's: 1000 steps, scaled_linear 0.00085..0.012, epsilon) | - |

64x64 RGB frames (grey drawings), VAE 4x down to 4x16x16 latents (scaling factor set from the latents'
spread), spatial self-attention at 16x16 and 8x8, text hidden size {TEXT_HIDDEN}.

## Data
- **Base (VAE, text encoder, UNet3D): moving doodles.** Procedural line drawings drawn on the fly by
  `flipsketch.tiny_world.doodles`: creatures (a body outline, head, eye, legs, tail, ears), houses,
  flags, stars, flowers, cars, waves, spirals, scribbles and outlined shapes, as cubic Bezier strokes
  0.7-1.9 px wide, moved by `data_gen`'s motion programs ({", ".join(DOODLE_PHRASES)}) and rasterised by
  its cairo renderer; the caption names a subject and the motion ("a doodle of a cat jumping").
  {FRAMES} frames per clip, 10% empty captions (for classifier-free guidance). No shipped sketch is used.
  Motion speed (`--spans`, `doodles.MOTION_SPANS`): {motion}.
- **Sketch LoRA (`lora/`):** rank 4 on the UNet attention projections, trained with the project's
  Lightning trainer (`experiment=tiny_world_lora`) on `data_gen` clips of the shipped sketches
  (black strokes on white), leaving out the held-out sketches {", ".join(HELDOUT_SKETCHES)}.

## Lineage
The VAE, text encoder and UNet3D continue from the first tiny_pretrained (the `--init` of the vae and
base stages), which was trained from scratch here on filled, grey and textured moving shapes
(`flipsketch.tiny_world.shapes`, `--domain shapes`): VAE 550 steps + decoder 300 steps (25 min), base
1,360 steps (72 min). That model drew filled blobs; the doodle stages below retrained it on line drawings.

## Training (this model's stages)
| stage | what | steps and wall time (2 cores) |
|---|---|---|
| vae | AutoencoderKL on doodle frames, L1 + L2 (strokes weighted x5) + 1e-4 KL, AdamW 5e-4, batch 16 frames, EMA 0.99 | {stage("vae")} |
| decoder | optional: the VAE decoder alone fine-tuned (encoder and latent space fixed) | {stage("decoder", "not run for this model")} |
| base | CLIPTextModel + UNet3D jointly on moving doodles, epsilon loss, min-SNR-5 weighting, AdamW 1e-3, batch 4 clips of 8 frames, EMA 0.998 | {stage("base")} |
| lora | rank-4 LoRA, `experiment=tiny_world_lora` | {stage("lora")} |

Self-attention sharpness of the base while it trained (entropy / log(sequence length), EMA weights,
t=500; 1 = uniform): {entropy_track(run)}.

Commands: `make tiny-world` runs, in order,
`python -m flipsketch.tiny_world --stage vae --init src/flipsketch/assets/tiny_pretrained`,
`--stage base --init ...`, `--stage export`, `--stage lora` (each resumable: rerun after a stop to
continue; `TINY_WORLD_STEPS` / `TINY_WORLD_MINUTES` bound the base stage). On a GPU,
`make tiny-world-gpu` (`experiments/gpu_tiny_world.py`) runs every stage within 9 minutes.

Sample it at the schedule it was tuned for, `sampler=tiny_world` (10 DDIM steps, stronger frame
alignment, guidance 5, λ as a weight on key frame 0); `make evidence` measures identity, motion, ink
and frame 0 on the held-out sketches, and docs/tiny_world.md in the repository shows the numbers and a
contact sheet.

## Files ({total:.1f} MB of safetensors)
| file | size |
|---|---|
{sizes}

Licence: MIT, like the project; trained only on data the project generates itself.
"""
    (out / "MODEL_CARD.md").write_text(text)
    return out / "MODEL_CARD.md"
