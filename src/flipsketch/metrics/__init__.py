"""Evaluation metrics for generated sketch animations.

CLIP metrics (need a CLIP backbone; report `scorer.backbone` with every number):
    ClipScorer.s2v  sketch-to-video consistency, ClipScorer.t2v  per-frame text-image alignment.
X-CLIP (the paper's T2V, after prior work): XClipScorer.t2v  text-to-video score of the whole clip.
One scoring policy for every method (post-processing, frame count, frame 0): ScoringPolicy.
Weight-free stroke metrics: Chamfer distances, motion, flicker, tolerant stroke IoU.
"""

from __future__ import annotations

from ..ink import otsu_threshold  # the stroke masks' threshold (sampling layer), re-exported
from .clip_metrics import TINY_CLIP_CFG, ClipScorer, TensorPreprocess, load_open_clip, passes_clip_filter
from .clipscore_ref import clipscore_reference  # imports torchmetrics only when called
from .policy import ScoringPolicy, sample_indices
from .stroke_metrics import (
    chamfer_distance,
    dilate_mask,
    motion_magnitude,
    sketch_chamfer,
    stroke_iou,
    stroke_mask,
    temporal_flicker,
)
from .suite import compute_all, t2v_name
from .xclip_metrics import XClipScorer, build_tiny_xclip

__all__ = [
    "TINY_CLIP_CFG",
    "ClipScorer",
    "ScoringPolicy",
    "TensorPreprocess",
    "XClipScorer",
    "build_tiny_xclip",
    "chamfer_distance",
    "clipscore_reference",
    "compute_all",
    "dilate_mask",
    "load_open_clip",
    "motion_magnitude",
    "otsu_threshold",
    "passes_clip_filter",
    "sample_indices",
    "sketch_chamfer",
    "stroke_iou",
    "stroke_mask",
    "t2v_name",
    "temporal_flicker",
]
