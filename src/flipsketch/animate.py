"""flipsketch-animate: one sketch + a prompt -> a flip-book animation (GIF, MP4, PNG frames).

Usage (Hydra-style overrides):
  flipsketch-animate sketch=cat.png prompt="a cat jumping" out=outputs/cat
  flipsketch-animate model=modelscope model.lora=weights/lora sketch=cat.png prompt="..." seeds=[0,1,2]
  flipsketch-animate ... sampler.lambda_=0.3 sampler.align=false segments=2 device=cuda

The sampler preset follows the model unless you pick one (sampler=flipsketch|fast|tiny_world):
  model=tiny_pretrained (the default) runs sampler=tiny_world (10 steps, a stronger alignment);
  model=modelscope / flipsketch_ckpt run sampler=flipsketch (the paper's 25 steps).

Common settings (see conf/animate.yaml, conf/sampler/flipsketch.yaml, conf/output/default.yaml):
  model=tiny|modelscope|flipsketch_ckpt|modelscope_random   which weights (tiny: built offline)
  sketch=PATH  prompt=TEXT  out=DIR  seeds=[0,1]  segments=K (chain K clips)
  sampler.num_frames=10 sampler.num_inference_steps=25 sampler.guidance_scale=9
  sampler.lambda_=0.5 (motion 0 .. fidelity 1)  sampler.tau1=10 sampler.tau2=15
    (tau1/tau2 null, the default: the paper's 10 and 15 of 25 steps, scaled to num_inference_steps)
  sampler.align=true|false  sampler.compose_spatial / compose_temporal=true|false
  sampler.faithful.<switch>=true   restore a behaviour of the authors' code
  output.binarize=true output.fps=10 output.formats=[gif,mp4,png]  (add svg: traced vector frames)
  device=auto|cpu|cuda  dtype=auto|float32|float16|bfloat16  cpu_offload=false
    (dtype=auto: bfloat16 on a GPU that supports it, else float16; float32 on the CPU)
Writes OUT/config.yaml (the composed config) and OUT/seed<S>/{animation.gif, animation.mp4,
frames/NNN.png, meta.json (settings, git commit, torch/diffusers versions, UTC time, command line)};
with svg in output.formats also animation.svg (animated, plays in a browser) and svg/NNN.svg.
Bad input ends with one line on stderr and exit code 2, with nothing written.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .cli import compose_config
from .config import SamplerConfig
from .errors import UserError, report_user_errors


def auto_gpu_dtype() -> str:
    """dtype=auto on a GPU: bfloat16 where the GPU supports it, float16 otherwise."""
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def resolve_device(device: str, dtype: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={device} asked for, but no CUDA GPU is available")
    if dtype == "auto":  # GPU: bf16 where supported (the authors ran bf16; alignment backpropagates
        # through the UNet without loss scaling, where fp16 gradients can underflow), else fp16
        dtype = auto_gpu_dtype() if device.startswith("cuda") else "float32"
    from .models.loaders import resolve_dtype

    return torch.device(device), resolve_dtype(dtype)


@dataclass
class Request:
    """Everything `animate` needs from the config, checked."""

    sketch_path: Path
    prompt: str
    seeds: list[int]
    segments: int
    out: Path
    sampler: SamplerConfig
    output: dict
    device: object
    dtype: object
    image: object  # the sketch, loaded and fitted to the model's resolution


def validate_request(cfg) -> Request:
    """Check everything the user typed before any model is built or any file written: types,
    ranges, finite numbers, the sketch (loaded), the model config and the output folder."""
    from omegaconf import OmegaConf

    from .checks import as_bool, as_int, as_list, as_str, check_out_dir, check_out_file_slot, reject_nonfinite
    from .models.registry import check_model_config
    from .outputs import check_output_config
    from .sketch import load_sketch

    reject_nonfinite(cfg)
    if cfg.get("sketch") in (None, ""):
        raise UserError("no sketch given: add sketch=PATH/TO/IMAGE")
    sketch = Path(as_str(cfg.sketch, "sketch")).expanduser()
    if not sketch.is_file():
        raise UserError(f"sketch not found: {sketch}" + (" (a folder)" if sketch.is_dir() else ""))
    prompt = "" if cfg.get("prompt") is None else as_str(cfg.prompt, "prompt")
    if not prompt.strip():
        raise UserError('prompt is empty: add prompt="a cat jumping" (describe the motion)')
    raw_seeds = as_list(cfg.get("seeds"), "seeds")
    seeds = []
    for s in raw_seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise UserError(f"seeds must be a non-empty list of non-negative integers, got {raw_seeds}")
        seeds.append(s)
    if not seeds:
        raise UserError("seeds must be a non-empty list of non-negative integers, got []")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"seeds lists a seed twice: {seeds}")
    segments = as_int(cfg.get("segments", 1), "segments", 1, 1000)
    output = check_output_config(cfg.output)
    sampler = SamplerConfig.from_dict(OmegaConf.to_container(cfg.sampler, resolve=True))
    _, model_kw = check_model_config(cfg.model)
    as_bool(cfg.get("cpu_offload", False), "cpu_offload")
    as_bool(cfg.get("progress", True), "progress")
    device, dtype = resolve_device(as_str(cfg.device, "device"), as_str(cfg.dtype, "dtype"))
    out = check_out_dir(cfg.get("out"), "out")
    for seed in seeds:
        check_out_file_slot(out / f"seed{seed}", "out")
    resolution = int(model_kw.get("resolution", 64))
    image = load_sketch(sketch, resolution, sampler.faithful.squash_aspect)
    return Request(sketch, prompt, seeds, segments, out, sampler, output, device, dtype, image)


def write_run_config(cfg, out: Path, record: dict) -> Path:
    """OUT/config.yaml: the composed config as run (resolved), with what `provenance` records."""
    from omegaconf import OmegaConf, open_dict

    out.mkdir(parents=True, exist_ok=True)
    cfg = cfg.copy()
    if "paths" in cfg and "output_dir" in cfg.paths:
        with open_dict(cfg):
            cfg.paths.output_dir = str(out)  # Hydra's runtime folder: animate's run folder is OUT
    text = "# " + "\n# ".join(f"{k}: {v}" for k, v in record.items()) + "\n"
    text += OmegaConf.to_yaml(OmegaConf.to_container(cfg, resolve=True))
    path = out / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def build_components(cfg, req: Request):
    """The model the config names, on the request's device and dtype (text encoder and VAE kept on
    the CPU with cpu_offload=true on a GPU)."""
    import torch

    from .models.registry import build_model_from_config

    comps = build_model_from_config(cfg.model)
    comps.to(device=req.device, dtype=req.dtype)
    if cfg.cpu_offload and req.device.type == "cuda":
        comps.text_encoder.to("cpu", dtype=torch.float32)
        comps.vae.to("cpu", dtype=torch.float32)
    return comps


def animate(
    cfg, argv: list[str] | None = None, components=None, command: str = "flipsketch-animate"
) -> list[Path]:
    """The task: validate, build the model, sample every seed (and segment), write outputs.
    OUT is the run folder: OUT/config.yaml holds the composed config, each seed's meta.json the
    git commit, library versions, UTC time and command line (`argv`: the overrides typed).
    `components`: a model already built by `build_components` for this config (the web app keeps
    one loaded between requests); None builds it."""
    from omegaconf import OmegaConf
    from PIL import Image

    from .outputs import binarize, write_animation
    from .pipeline import FlipSketchPipeline

    req = validate_request(cfg)
    device, dtype, output = req.device, req.dtype, req.output

    comps = build_components(cfg, req) if components is None else components
    pipe = FlipSketchPipeline(comps, req.sampler, device=device)
    from .provenance import provenance

    record = provenance(None if argv is None else [command, *argv])
    write_run_config(cfg, req.out, {k: v for k, v in record.items() if k != "versions"})

    written = []
    for seed in req.seeds:
        clips, sketch, stats = [], req.image, []
        for k in range(req.segments):
            res = pipe(sketch, req.prompt, seeds=[seed + k], progress=bool(cfg.progress))
            frames = res.frames[0]
            if output["binarize"]:
                frames = binarize(frames, output["binarize_upscale"])
            clips.append(frames if k == 0 else frames[1:])  # drop the duplicated first frame
            stats.append({k2: v for k2, v in res.stats.items() if k2 != "align_losses"})
            last = frames[-1]
            sketch = Image.fromarray(last).convert("RGB").resize((comps.resolution,) * 2)
        video = np.concatenate(clips)
        if output.get("clip_filter", {}).get("enabled") and not _passes_clip_filter(cfg, req.image, video):
            print(f"seed {seed}: dropped by the CLIP filter", file=sys.stderr)
            continue
        meta = {
            "prompt": req.prompt,
            "seed": seed,
            "sketch": str(req.sketch_path),
            "segments": req.segments,
            "frames": int(video.shape[0]),
            "model": comps.describe(),
            "sampler": req.sampler.to_dict(),  # as set: tau1/tau2 null = the paper's, scaled
            "tau": req.sampler.taus_used(),  # the tau actually used
            "output": OmegaConf.to_container(cfg.output, resolve=True),
            "device": str(device),
            "dtype": str(dtype).replace("torch.", ""),
            "flipsketch_version": __version__,
            **record,  # git, versions, time_utc, command
            "stats": stats,
        }
        written.append(
            write_animation(req.out / f"seed{seed}", video, meta, output["fps"], tuple(output["formats"]))
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
    from .cli import run_check
    from .quiet import quiet_third_party

    quiet_third_party()
    flags = [a for a in argv if a.startswith("-")]
    if flags:
        raise UserError(
            f"unknown option {flags[0]!r}: settings are key=value (e.g. sampler.lambda_=0.3); --help lists them"
        )
    from .cli import with_model_sampler

    cfg = compose_config("animate", with_model_sampler("animate", argv))
    run_check(validate_request, cfg)  # every check, before any model is built
    paths = animate(cfg, argv)
    for p in paths:
        print(p / "animation.gif" if (p / "animation.gif").exists() else p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
