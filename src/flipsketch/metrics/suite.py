"""All metrics of one generated clip in one call."""

from __future__ import annotations

from ._io import gray_frames, gray_image
from .clip_metrics import ClipScorer
from .stroke_metrics import chamfer_distance, motion_magnitude, stroke_iou, stroke_mask, temporal_flicker


def t2v_name(scorer: ClipScorer, t2v_scorer=None) -> str:
    """The name written beside T2V numbers: the X-CLIP model, or the CLIP backbone scored per frame."""
    return t2v_scorer.backbone if t2v_scorer is not None else f"{scorer.backbone} per-frame"


def compute_all(
    scorer: ClipScorer, sketch, prompt: str, frames, skip_first: bool = False, t2v_scorer=None
) -> dict:
    """Every metric for one (sketch, prompt, frames) triple.

    Keys: s2v (CLIP sketch-frame cosine, mean over frames), t2v (`t2v_scorer`'s text-video score,
    e.g. an XClipScorer; None: the mean per-frame CLIP text-image cosine of `scorer`), chamfer (mean sketch-to-frame Chamfer, px),
    motion (mean consecutive-frame Chamfer, px), flicker (mean consecutive |intensity change|, 0-1),
    frame0_iou (tolerant stroke IoU of the sketch vs frame 0), backbone (the CLIP model behind
    s2v), t2v_scorer (what scored t2v, see `t2v_name`). `skip_first` drops frame 0 (FlipSketch's reference frame) from s2v, t2v and chamfer;
    motion and flicker always use every frame. Stroke metrics need sketch and frames of one size.
    """
    sk, fr = gray_image(sketch), gray_frames(frames)
    if sk.shape != fr.shape[1:]:
        raise ValueError(f"sketch is {sk.shape} but frames are {fr.shape[1:]}; resize one to match")
    sk_mask, fr_masks = stroke_mask(sk), stroke_mask(fr)
    scored = fr_masks[1:] if skip_first else fr_masks
    chamfers = [chamfer_distance(sk_mask, m) for m in scored]
    return dict(
        s2v=scorer.s2v(sketch, frames, skip_first=skip_first),
        t2v=(t2v_scorer or scorer).t2v(prompt, frames, skip_first=skip_first),
        chamfer=float(sum(chamfers) / len(chamfers)) if chamfers else float("nan"),
        motion=motion_magnitude(fr),
        flicker=temporal_flicker(fr),
        frame0_iou=stroke_iou(sk_mask, fr_masks[0]),
        backbone=scorer.backbone,
        t2v_scorer=t2v_name(scorer, t2v_scorer),
    )
