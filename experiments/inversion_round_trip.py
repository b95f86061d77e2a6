"""DDIM inversion round trip on a model: how exactly does sampling undo the inversion?

Each sketch is encoded (posterior mean, [-1,1] pixels), inverted with the empty prompt to the first
denoising timestep, then DDIM-sampled back with the same empty prompt (no guidance, no composition,
one frame). Reported, mean over the sketches: the latent's relative error ||z0' - z0|| / ||z0|| and
the decoded picture's mean absolute error against the decoded z0 (0-255), for both conventions of
`sampler.faithful.inversion_model_timestep` ("input": ours, the UNet queried at the latent's own
level; "target": diffusers' and the authors'), and for seeded Gaussian noise sampled the same way
(what no inversion at all gives).

  python experiments/inversion_round_trip.py                        # shipped model, 25 and 10 steps
  python experiments/inversion_round_trip.py --model tiny --steps 25
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from flipsketch.config import SamplerConfig
from flipsketch.evaluation.benchmark import render_svg
from flipsketch.inversion import ddim_invert, ddim_sample
from flipsketch.models import build_model
from flipsketch.pipeline import FlipSketchPipeline
from flipsketch.sketch import load_sketch

SKETCHES = ("cat", "fish", "bird", "star", "car", "flag", "balloon", "flower")  # the held-out eight
ROOT = Path(__file__).resolve().parents[1] / "data_gen" / "sketches"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny_pretrained")
    ap.add_argument("--steps", type=int, nargs="+", default=[25, 10])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    pipe = FlipSketchPipeline(build_model(a.model))
    unet, sched = pipe.c.unet, pipe.c.scheduler
    empty = pipe.encode_prompt([""])

    def eps(z, t):
        with torch.no_grad():
            return unet(z, t, encoder_hidden_states=empty).sample

    def pixels(z):
        return pipe.decode_latents(z).astype(np.float64)

    with tempfile.TemporaryDirectory() as tmp:
        images = [
            load_sketch(render_svg(ROOT / f"{s}.svg", Path(tmp) / f"{s}.png", 256), pipe.c.resolution)
            for s in SKETCHES
        ]
    z0s = [pipe.encode_sketch(img, SamplerConfig(), seed=0) for img in images]
    print(f"model={a.model}, {len(z0s)} held-out sketches, empty prompt, mean over sketches")
    print("| steps | inversion | latent rel. error | pixel MAE (0-255) |")
    print("|---|---|---|---|")
    for steps in a.steps:
        for mode in ("input", "target", "noise"):
            lat, pix = [], []
            for k, z0 in enumerate(z0s):
                if mode == "noise":
                    g = torch.Generator().manual_seed(k)
                    zt = torch.randn(z0.shape, generator=g)
                else:
                    zt = ddim_invert(eps, z0, sched.config, steps, mode)
                back = ddim_sample(eps, zt, type(sched).from_config(sched.config), steps)
                lat.append(float((back - z0).norm() / z0.norm()))
                pix.append(float(np.abs(pixels(back) - pixels(z0)).mean()))
            name = {"input": "input (ours)", "target": "target (official)", "noise": "none: Gaussian noise"}[
                mode
            ]
            print(f"| {steps} | {name} | {np.mean(lat):.4f} | {np.mean(pix):.2f} |")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
