"""flipsketch-animate: one sketch + a prompt -> a flip-book animation (GIF, MP4, PNG frames).

Usage (Hydra-style overrides):
  flipsketch-animate sketch=cat.png prompt="a cat jumping" out=outputs/cat
  flipsketch-animate model=modelscope model.lora=weights/lora sketch=cat.png prompt="..." seeds=[0,1,2]
  flipsketch-animate ... sampler.lambda_=0.3 sampler.align=false segments=2 device=cuda

Common settings (see conf/animate.yaml, conf/sampler/flipsketch.yaml, conf/output/default.yaml):
  model=tiny|modelscope|flipsketch_ckpt|modelscope_random   which weights (tiny: built offline)
  sketch=PATH  prompt=TEXT  out=DIR  seeds=[0,1]  segments=K (chain K clips)
  sampler.num_frames=10 sampler.num_inference_steps=25 sampler.guidance_scale=9
  sampler.lambda_=0.5 (motion 0 .. fidelity 1)  sampler.tau1=10 sampler.tau2=15
  sampler.align=true|false  sampler.compose_spatial / compose_temporal=true|false
  sampler.faithful.<switch>=true   restore a behaviour of the authors' code
  output.binarize=true output.fps=10 output.formats=[gif,mp4,png]
  device=auto|cpu|cuda  dtype=auto|float32|float16|bfloat16  cpu_offload=false
Writes OUT/seed<S>/{animation.gif, animation.mp4, frames/NNN.png, meta.json}.
Bad input ends with one line on stderr and exit code 2, with nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from . import __version__
from .cli import compose_config, instantiate_checked
from .config import SamplerConfig
from .errors import UserError, report_user_errors


def resolve_device(device: str, dtype: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={device} asked for, but no CUDA GPU is available")
    if dtype == "auto":
        dtype = "float16" if device.startswith("cuda") else "float32"
    from .models.loaders import resolve_dtype

    return torch.device(device), resolve_dtype(dtype)


def validate_request(cfg) -> tuple[Path, str, list[int]]:
    """Check everything the user typed before any model is built or any file written."""
    if cfg.sketch in (None, ""):
        raise UserError("no sketch given: add sketch=PATH/TO/IMAGE")
    sketch = Path(str(cfg.sketch)).expanduser()
    if not sketch.is_file():
        raise UserError(f"sketch not found: {sketch}")
    prompt = "" if cfg.prompt is None else str(cfg.prompt)
    if not prompt.strip():
        raise UserError('prompt is empty: add prompt="a cat jumping" (describe the motion)')
    seeds = list(cfg.seeds) if not isinstance(cfg.seeds, int) else [cfg.seeds]
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
        raise UserError(f"seeds must be a non-empty list of non-negative integers, got {seeds}")
    if int(cfg.segments) < 1:
        raise UserError(f"segments must be >= 1, got {cfg.segments}")
    if int(cfg.output.fps) < 1:
        raise UserError(f"output.fps must be >= 1, got {cfg.output.fps}")
    bad = set(cfg.output.formats) - {"gif", "mp4", "png"}
    if bad:
        raise UserError(f"unknown output format(s) {sorted(bad)}; choose from gif, mp4, png")
    return sketch, prompt, seeds


def animate(cfg) -> list[Path]:
    """The task: validate, build the model, sample every seed (and segment), write outputs."""
    from omegaconf import OmegaConf
    from PIL import Image

    from .outputs import binarize, write_animation
    from .pipeline import FlipSketchPipeline
    from .sketch import load_sketch

    sketch_path, prompt, seeds = validate_request(cfg)
    sampler = SamplerConfig.from_dict(OmegaConf.to_container(cfg.sampler, resolve=True))
    device, dtype = resolve_device(str(cfg.device), str(cfg.dtype))
    image = load_sketch(sketch_path, int(cfg.model.resolution), sampler.faithful.squash_aspect)

    comps = instantiate_checked(cfg.model)
    comps.to(device=device, dtype=dtype)
    if cfg.cpu_offload and device.type == "cuda":
        comps.text_encoder.to("cpu", dtype=__import__("torch").float32)
        comps.vae.to("cpu", dtype=__import__("torch").float32)
    pipe = FlipSketchPipeline(comps, sampler, device=device)

    out_root = Path(str(cfg.out))
    written = []
    for seed in seeds:
        clips, sketch, stats = [], image, []
        for k in range(int(cfg.segments)):
            res = pipe(sketch, prompt, seeds=[seed + k], progress=bool(cfg.progress))
            frames = res.frames[0]
            if cfg.output.binarize:
                frames = binarize(frames, int(cfg.output.binarize_upscale))
            clips.append(frames if k == 0 else frames[1:])  # drop the duplicated first frame
            stats.append({k2: v for k2, v in res.stats.items() if k2 != "align_losses"})
            last = frames[-1]
            sketch = Image.fromarray(last).convert("RGB").resize((comps.resolution,) * 2)
        video = np.concatenate(clips)
        if cfg.output.clip_filter.enabled and not _passes_clip_filter(cfg, image, video):
            print(f"seed {seed}: dropped by the CLIP filter", file=sys.stderr)
            continue
        meta = {
            "prompt": prompt,
            "seed": seed,
            "sketch": str(sketch_path),
            "segments": int(cfg.segments),
            "frames": int(video.shape[0]),
            "model": comps.describe(),
            "sampler": sampler.to_dict(),
            "output": OmegaConf.to_container(cfg.output, resolve=True),
            "device": str(device),
            "dtype": str(dtype).replace("torch.", ""),
            "flipsketch_version": __version__,
            "stats": stats,
        }
        written.append(
            write_animation(
                out_root / f"seed{seed}", video, meta, int(cfg.output.fps), tuple(cfg.output.formats)
            )
        )
    return written


def _passes_clip_filter(cfg, sketch_image, video) -> bool:
    from .metrics import ClipScorer

    f = cfg.output.clip_filter
    scorer = ClipScorer(f.model_name, f.pretrained)
    per_frame = scorer.s2v_per_frame(sketch_image, video)
    return bool(per_frame.mean() > float(f.threshold))


@report_user_errors
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help", "help") for a in argv):
        print(__doc__)
        return 0
    cfg = compose_config("animate", argv)
    paths = animate(cfg)
    for p in paths:
        print(p / "animation.gif" if (p / "animation.gif").exists() else p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
