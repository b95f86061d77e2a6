"""The animate task: a checked request (`validate_request`), the model it names
(`build_components`), and `animate`, which samples every seed (and segment) and writes the outputs.
flipsketch-animate (animate.py) and flipsketch-app call it; it knows no command line.
Sampling layer (docs/ARCHITECTURE.md): the optional CLIP filter is passed in by the caller.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .config import SamplerConfig
from .errors import UserError


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


def validate_request(cfg, svg_reader=None) -> Request:
    """Check everything the user typed before any model is built or any file written: types,
    ranges, finite numbers, the sketch (loaded), the model config and the output folder.
    `svg_reader`: how an SVG sketch is drawn (sketch.SvgReader; the CLIs pass data_gen's safe
    rasteriser, data_gen.raster.render_svg_file); None refuses SVG sketches with a message."""
    from omegaconf import OmegaConf

    from .checks import (
        as_bool,
        as_int,
        as_seeds,
        as_str,
        check_out_dir,
        check_out_file_slot,
        check_own_folder,
        reject_nonfinite,
    )
    from .models.loaders import resolve_device
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
    seeds = as_seeds(cfg.get("seeds"))
    segments = as_int(cfg.get("segments", 1), "segments", 1, 1000)
    output = check_output_config(cfg.output)
    sampler = SamplerConfig.from_dict(OmegaConf.to_container(cfg.sampler, resolve=True))
    _, model_kw = check_model_config(cfg.model)
    as_bool(cfg.get("cpu_offload", False), "cpu_offload")
    as_bool(cfg.get("progress", True), "progress")
    device, dtype = resolve_device(as_str(cfg.device, "device"), as_str(cfg.dtype, "dtype"))
    out = check_out_dir(cfg.get("out"), "out")
    if not _written_by_animate(out):
        check_own_folder(out, "out")  # never overwrite a folder of the user's (e.g. their own seed0/)
    for seed in seeds:
        check_out_file_slot(out / f"seed{seed}", "out")
    resolution = int(model_kw.get("resolution", 64))
    image = load_sketch(sketch, resolution, sampler.faithful.squash_aspect, svg_reader)
    return Request(sketch, prompt, seeds, segments, out, sampler, output, device, dtype, image)


def _written_by_animate(out: Path) -> bool:
    """A run folder written before the marker existed: its config.yaml starts with our record."""
    try:
        with open(out / "config.yaml", encoding="utf-8") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head.startswith("# ") and "command: flipsketch-" in head


def write_run_config(cfg, out: Path, record: dict) -> Path:
    """OUT/config.yaml: the composed config as run (resolved), with what `provenance` records."""
    import yaml
    from omegaconf import OmegaConf, open_dict

    from .checks import mark_own_folder

    mark_own_folder(out, "flipsketch-animate")  # ours: a later run may replace what is in it
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.out = str(out)  # as resolved once (a timestamped default must not be re-read later)
        if "paths" in cfg and "output_dir" in cfg.paths:
            cfg.paths.output_dir = str(out)  # Hydra's runtime folder: animate's run folder is OUT
    text = "# " + "\n# ".join(f"{k}: {v}" for k, v in record.items()) + "\n"
    # plain YAML of the resolved values: user text (the prompt) is written as typed, never
    # re-read as an interpolation (OmegaConf.to_yaml would parse a prompt of "${" and fail)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    text += yaml.safe_dump(resolved, default_flow_style=False, allow_unicode=True, sort_keys=False)
    path = out / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _item_progress(on_progress, item: int, items: int, seed: int, k: int, segments: int):
    """The pipeline's per-sample progress as a share of the whole run (item `item` of `items`)."""
    if on_progress is None:
        return None
    name = f"seed {seed}" + (f" segment {k + 1}/{segments}" if segments > 1 else "")

    def report(fraction: float, label: str) -> None:
        on_progress((item + fraction) / items, f"{name}: {label}")

    return report


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
    cfg,
    argv: list[str] | None = None,
    components=None,
    command: str = "flipsketch-animate",
    clip_filter: Callable | None = None,
    on_progress: Callable[[float, str], None] | None = None,
    svg_reader: Callable | None = None,
) -> list[Path]:
    """The task: validate, build the model, sample every seed (and segment), write outputs.
    OUT is the run folder: OUT/config.yaml holds the composed config, each seed's meta.json the
    git commit, library versions, UTC time and command line (`argv`: the overrides typed).
    `components`: a model already built by `build_components` for this config (the web app keeps
    one loaded between requests); None builds it. `clip_filter(filter_cfg, sketch_image, video)`
    says whether a seed's clip is kept when `output.clip_filter.enabled` (the command line and the
    app pass `metrics.passes_clip_filter`; scoring is the evaluation layer's, not sampling's).
    `on_progress(fraction, label)`: the whole run's progress (every seed and segment; fraction in
    [0, 1], never decreasing; label e.g. "seed 0: step 3/10: aligning 2/5 (loss 0.01)"), for the
    web app's page; the terminal gets its tqdm bar with `progress=true` either way.
    `svg_reader`: see `validate_request` (the command line and the app pass data_gen's)."""
    import torch
    from omegaconf import OmegaConf
    from PIL import Image

    from .api import FlipSketchPipeline
    from .ink import binarize
    from .outputs import write_animation

    req = validate_request(cfg, svg_reader)
    device, dtype, output = req.device, req.dtype, req.output
    filtering = bool(output.get("clip_filter", {}).get("enabled"))
    if filtering and clip_filter is None:
        raise UserError(
            "output.clip_filter.enabled=true, but animate() got no clip_filter "
            "(pass clip_filter=flipsketch.metrics.passes_clip_filter)"
        )

    comps = build_components(cfg, req) if components is None else components
    pipe = FlipSketchPipeline.from_components(comps, req.sampler, device=device)
    pipe.set_progress_bar_config(disable=not bool(cfg.progress))
    from .provenance import provenance

    record = provenance(None if argv is None else [command, *argv])
    write_run_config(cfg, req.out, {k: v for k, v in record.items() if k != "versions"})

    written = []
    items = len(req.seeds) * req.segments
    for j, seed in enumerate(req.seeds):
        clips, sketch, stats = [], req.image, []
        for k in range(req.segments):
            gen = torch.Generator().manual_seed(seed + k)  # the seed's noise, as seeds=[seed + k] draws it
            res = pipe(
                prompt=req.prompt,
                image=sketch,
                generator=gen,
                output_type="uint8",
                on_progress=_item_progress(on_progress, j * req.segments + k, items, seed, k, req.segments),
            )
            frames = res.frames[0]
            if output["binarize"]:
                frames = binarize(frames, output["binarize_upscale"])
            clips.append(frames if k == 0 else frames[1:])  # drop the duplicated first frame
            stats.append({k2: v for k2, v in res.stats.items() if k2 != "align_losses"})
            last = frames[-1]
            sketch = Image.fromarray(last).convert("RGB").resize((comps.resolution,) * 2)
        video = np.concatenate(clips)
        if filtering and not clip_filter(cfg.output.clip_filter, req.image, video):
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
