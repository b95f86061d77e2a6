"""flipsketch-animate: one sketch + a prompt -> a flip-book animation (GIF, MP4, PNG frames).

Usage (Hydra-style overrides):
  flipsketch-animate sketch=cat.png prompt="a cat jumping" out=outputs/cat
  flipsketch-animate model=modelscope model.lora=weights/lora sketch=cat.png prompt="..." seeds=[0,1,2]
  flipsketch-animate ... sampler.lambda_=0.3 sampler.align=false segments=2 device=cuda

The sampler preset follows the model unless you pick one (sampler=flipsketch|fast|tiny_world):
  model=tiny_pretrained (the default) runs sampler=tiny_world (10 steps, a stronger alignment);
  model=modelscope / flipsketch_ckpt run sampler=flipsketch (the paper's 25 steps).

Common settings (see conf/animate.yaml, conf/sampler/*.yaml, conf/output/default.yaml; the
values the chosen model runs are listed at the end of this page):
  model=NAME   which weights (the list below; tiny: random, built offline)
  sketch=PATH (any image, or an SVG)  prompt=TEXT  seeds=[0,1]  segments=K (chain K clips)
  out=DIR (default logs/animate/runs/<date>_<time>: a new run folder each time)
  sampler.num_frames=N sampler.num_inference_steps=N sampler.guidance_scale=G
  sampler.lambda_=L (motion 0 .. fidelity 1)  sampler.tau1=T1 sampler.tau2=T2
    (tau1/tau2 null, the default: the paper's 10 and 15 of 25 steps, scaled to num_inference_steps)
  sampler.align=true|false  sampler.compose_spatial / compose_temporal=true|false
  sampler.faithful.<switch>=true   restore a behaviour of the authors' code
  output.binarize=true output.binarize_upscale=4 (frames upsampled, then Otsu: 64 -> 256 px)
  output.fps=10 output.formats=[gif,mp4,png]  (add svg: traced vector frames)
  device=auto|cpu|cuda  dtype=auto|float32|float16|bfloat16  cpu_offload=false
    (dtype=auto: bfloat16 on a GPU that supports it, else float16; float32 on the CPU)
Writes OUT/config.yaml (the composed config) and OUT/seed<S>/{animation.gif, animation.mp4,
frames/NNN.png, meta.json (settings, git commit, torch/diffusers versions, UTC time, command line)};
with svg in output.formats also animation.svg (animated, plays in a browser) and svg/NNN.svg.
Bad input ends with one line on stderr and exit code 2, with nothing written.
"""

from __future__ import annotations

import sys

from .cli import cli_main
from .flipbook import Request, animate, build_components, validate_request, write_run_config
from .models.loaders import auto_gpu_dtype, resolve_device

# The task lives in flipsketch.flipbook (and resolve_device in flipsketch.models.loaders); they are
# imported here for the command line and the old import paths (`from flipsketch.animate import animate`).
__all__ = [
    "Request",
    "animate",
    "auto_gpu_dtype",
    "build_components",
    "main",
    "resolve_device",
    "run",
    "validate_request",
    "write_run_config",
]


def check(cfg) -> Request:
    """Every check of the request, SVG sketches read by data_gen's safe rasteriser."""
    from data_gen.raster import render_svg_file

    return validate_request(cfg, svg_reader=render_svg_file)


def run(cfg, argv: list[str]) -> list:
    """The command line's task: animate (with the CLIP filter) and print each written animation."""
    from data_gen.raster import render_svg_file

    from .metrics import passes_clip_filter

    paths = animate(cfg, argv, clip_filter=passes_clip_filter, svg_reader=render_svg_file)
    for p in paths:
        print(p / "animation.gif" if (p / "animation.gif").exists() else p)
    return paths


main = cli_main(
    "animate",
    run,
    program="flipsketch-animate",
    help_text=__doc__,
    help_groups=False,  # the docstring is the whole page
    help_words=("-h", "--help", "help"),
    check=check,  # every check, before any model is built
    hydra_run=False,  # no Hydra run folder: OUT is the run folder
)


if __name__ == "__main__":
    sys.exit(main())
