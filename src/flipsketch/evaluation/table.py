"""Results tables: mean ± std over items and seeds per method, laid out like the paper's Table 1.

| Method | S2V ↑ (open_clip:ViT-B-32/openai) | T2V ↑ (xclip:microsoft/xclip-base-patch32) | Chamfer ↓ | Motion | Flicker | Frame-0 IoU | n | s / video |
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .methods import Method

COLUMNS = (  # key, header, decimals
    ("s2v", "S2V ↑", 3),
    ("t2v", "T2V ↑", 3),
    ("chamfer", "Chamfer ↓ (px)", 2),
    ("motion", "Motion (px)", 2),
    ("flicker", "Flicker", 4),
    ("frame0_iou", "Frame-0 IoU ↑", 3),
)
NO_TEXT = "†"


def _stats(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if x is not None and not math.isnan(float(x))], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def summarize(rows: list[dict], methods: list[Method]) -> list[dict]:
    """One dict per method, in table order: label, n, <metric>_mean / _std, seconds_mean, backbone."""
    out = []
    for m in methods:
        mine = [r for r in rows if r["method"] == m.name]
        s = {
            "method": m.name,
            "label": m.label,
            "kind": m.kind,
            "n": len(mine),
            "items": len({r["item"] for r in mine}),
            "seeds": len({r["seed"] for r in mine}),
            "text_conditioned": m.text_conditioned,
            "fingerprint": m.fingerprint,
            "backbone": ", ".join(sorted({str(r.get("backbone")) for r in mine})),
            # what scored T2V (older rows without the key: the CLIP backbone)
            "t2v_scorer": ", ".join(sorted({str(r.get("t2v_scorer") or r.get("backbone")) for r in mine})),
            "sampler": sampler_name(m),
        }
        for key, _, _ in (*COLUMNS, ("seconds", "", 0)):
            s[f"{key}_mean"], s[f"{key}_std"] = _stats([r.get(key) for r in mine])
        out.append(s)
    return out


def sampler_name(m: Method) -> str:
    """Which sampler made a row: `ours` / `official` / `ours + faithful.<switch>` (variants), `-` (baselines)."""
    return m.sampler.faithful.describe() if m.sampler is not None else "-"


def sampler_line(summary: list[dict]) -> str:
    """The header line saying which sampler each FlipSketch row used."""
    rows = [s for s in summary if s.get("sampler", "-") != "-"]
    if not rows:
        return ""
    what = {
        "ours": "ours (every sampler.faithful switch off)",
        "official": "official (the authors' loop: every sampler.faithful switch on)",
    }
    kinds = {s["sampler"] for s in rows}
    if len(kinds) == 1:
        k = kinds.pop()
        return f"Sampler: {what.get(k, k)} for every FlipSketch row\n"
    return (
        "Sampler per row: "
        + "; ".join(f"{s['label']}: {what.get(s['sampler'], s['sampler'])}" for s in rows)
        + "\n"
    )


def _cell(mean: float, std: float, decimals: int) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def to_markdown(summary: list[dict], title: str = "") -> str:
    def names(key: str) -> str:
        return (
            ", ".join(sorted({s.get(key) or s["backbone"] for s in summary if s.get(key) or s["backbone"]}))
            or "?"
        )

    by = {"s2v": names("backbone"), "t2v": names("t2v_scorer")}  # the scorer beside every number
    heads = [f"{h} ({by[k]})" if k in by else h for k, h, _ in COLUMNS]
    lines = [title] if title else []
    lines += ["| Method | " + " | ".join(heads) + " | n | s / video |", "|---" * (len(COLUMNS) + 3) + "|"]
    for s in summary:
        cells = []
        for key, _, dec in COLUMNS:
            c = _cell(s[f"{key}_mean"], s[f"{key}_std"], dec)
            cells.append(c + NO_TEXT if key == "t2v" and not s["text_conditioned"] and c != "–" else c)
        sec = "–" if math.isnan(s["seconds_mean"]) else f"{s['seconds_mean']:.1f}"
        lines.append(f"| {s['label']} | " + " | ".join(cells) + f" | {s['n']} | {sec} |")
    if any(not s["text_conditioned"] for s in summary):
        lines.append(f"\n{NO_TEXT} the method does not see the prompt (the paper prints “-”).")
    return "\n".join(lines) + "\n"


SUMMARY_FIELDS = (
    "method",
    "label",
    "kind",
    "n",
    "items",
    "seeds",
    "backbone",
    "t2v_scorer",
    "text_conditioned",
    "fingerprint",
    "sampler",
)
ITEM_FIELDS = (
    "method",
    "label",
    "kind",
    "item",
    "seed",
    "prompt",
    "s2v",
    "t2v",
    "chamfer",
    "motion",
    "flicker",
    "frame0_iou",
    "backbone",
    "t2v_scorer",
    "seconds",
    "frames",
    "frames_scored",
    "size",
    "status",
    "folder",
)


def write_summary_csv(path: Path, summary: list[dict]) -> Path:
    stats = [f"{k}_{s}" for k, _, _ in (*COLUMNS, ("seconds", "", 0)) for s in ("mean", "std")]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[*SUMMARY_FIELDS, *stats], extrasaction="ignore")
        w.writeheader()
        w.writerows(summary)
    return path


def write_items_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(ITEM_FIELDS), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path
