"""Baselines for the paper's Table 1, behind one interface (`Baseline.generate`) and a registry.

    from flipsketch.baselines import build_baseline
    svd = build_baseline("svd", path="weights/stable-video-diffusion-img2vid")
    frames = svd.generate(image, None, num_frames=14, size=256, steps=25, guidance=3.0, seed=0)

svd           Stable Video Diffusion via diffusers (image only)
dynamicrafter DynamiCrafter via its own command, or a folder of its outputs
external      any other program / folder of outputs, same adapter
t2v_plain     the evaluated text-to-video model with no reference sketch
live_sketch   Live-Sketch per-frame SVG outputs, rasterised
"""

from .base import BASELINE_REGISTRY, Baseline, build_baseline, fit_frames, register_baseline
from .external import DynamiCrafterBaseline, ExternalBaseline
from .frames_io import read_clip
from .live_sketch import LiveSketchBaseline
from .svd import SVDBaseline
from .t2v_plain import T2VPlainBaseline

__all__ = [
    "BASELINE_REGISTRY",
    "Baseline",
    "DynamiCrafterBaseline",
    "ExternalBaseline",
    "LiveSketchBaseline",
    "SVDBaseline",
    "T2VPlainBaseline",
    "build_baseline",
    "fit_frames",
    "read_clip",
    "register_baseline",
]
