"""Results tables laid out like the paper's Table 1: per method the mean over (sketch, seed) units
and its bootstrap 95% interval, then each other row's paired difference from FlipSketch (flipsketch.stats).

| Method | S2V ↑ (open_clip:ViT-B-32/openai) | T2V ↑ (xclip:...) | Chamfer ↓ | ... | n | s / video |
| FlipSketch | 0.912 [0.90, 0.93] | ...
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..stats import StatsSettings, interval_text, mean_interval, paired_difference
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
REFERENCE = "full"  # the row every other row is compared with (FlipSketch), else the first row


def _stats(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if x is not None and not math.isnan(float(x))], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def units(rows: list[dict], method: str, key: str) -> dict[str, float]:
    """{"<item>/seed<S>": value} of one method's metric: the units a paired difference matches."""
    out = {}
    for r in rows:
        v = r.get(key)
        if r["method"] == method and v is not None and math.isfinite(float(v)):
            out[f"{r['item']}/seed{r['seed']}"] = float(v)
    return out


def summarize(rows: list[dict], methods: list[Method], stats: StatsSettings | None = None) -> list[dict]:
    """One dict per method, in table order: label, n, <metric>_mean / _std / _lo / _hi (the
    bootstrap interval), seconds_mean, backbone; other rows than the reference also `vs`:
    {metric: paired difference from the reference on the units both have}."""
    stats = stats or StatsSettings()
    names = [m.name for m in methods]
    ref = REFERENCE if REFERENCE in names else (names[0] if names else None)
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
        for key, _, _ in COLUMNS:
            ci = mean_interval(units(mine, m.name, key).values(), stats)
            s[f"{key}_lo"], s[f"{key}_hi"] = ci["lo"], ci["hi"]
        if m.name != ref:
            s["reference"] = ref
            s["vs"] = {
                k: paired_difference(units(rows, m.name, k), units(rows, ref, k), stats)
                for k, _, _ in COLUMNS
            }
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


def _cell(s: dict, key: str, decimals: int) -> str:
    return interval_text(s[f"{key}_mean"], s[f"{key}_lo"], s[f"{key}_hi"], decimals)


def _diff_cell(p: dict, decimals: int) -> str:
    text = interval_text(p["diff"], p["lo"], p["hi"], decimals, signed=True)
    return text + (" *" if p["excludes_zero"] else "")


def differences_markdown(summary: list[dict], stats: StatsSettings | None = None) -> str:
    """The second block: each row's paired difference from the reference (same units), n paired."""
    stats = stats or StatsSettings()
    others = [s for s in summary if s.get("vs")]
    if not others:
        return ""
    ref = next((s["label"] for s in summary if s["method"] == others[0]["reference"]), "?")
    lines = [
        "",
        f"Paired difference from {ref} ({others[0]['reference']}), row minus {ref}, on the (sketch, seed) "
        f"units both have; [..] {stats.percent} bootstrap interval ({stats.bootstrap} resamples); "
        "* the interval excludes 0",
        "",
        "| Method | " + " | ".join(f"Δ {h}" for _, h, _ in COLUMNS) + " | n paired |",
        "|---" * (len(COLUMNS) + 2) + "|",
    ]
    for s in others:
        cells = [_diff_cell(s["vs"][k], dec) for k, _, dec in COLUMNS]
        n = max(p["n"] for p in s["vs"].values())
        lines.append(f"| {s['label']} | " + " | ".join(cells) + f" | {n} |")
    return "\n".join(lines) + "\n"


def to_markdown(summary: list[dict], title: str = "", stats: StatsSettings | None = None) -> str:
    """The results table (mean [interval] per metric) and the block of paired differences."""
    stats = stats or StatsSettings()

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
            c = _cell(s, key, dec)
            cells.append(c + NO_TEXT if key == "t2v" and not s["text_conditioned"] and c != "–" else c)
        sec = "–" if math.isnan(s["seconds_mean"]) else f"{s['seconds_mean']:.1f}"
        lines.append(f"| {s['label']} | " + " | ".join(cells) + f" | {s['n']} | {sec} |")
    lines.append(
        f"\nMean over the method's (sketch, seed) units [{stats.percent} percentile bootstrap interval, "
        f"{stats.bootstrap} resamples, stats.seed={stats.seed}]; n: units scored."
    )
    if any(not s["text_conditioned"] for s in summary):
        lines.append(f"\n{NO_TEXT} the method does not see the prompt (the paper prints “-”).")
    return "\n".join(lines) + "\n" + differences_markdown(summary, stats)


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
    stats = [f"{k}_{s}" for k, _, _ in COLUMNS for s in ("mean", "std", "lo", "hi")]
    diffs = [f"{k}_diff{s}" for k, _, _ in COLUMNS for s in ("", "_lo", "_hi", "_n")]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(
            fh,
            fieldnames=[*SUMMARY_FIELDS, *stats, "seconds_mean", "seconds_std", "reference", *diffs],
            extrasaction="ignore",
        )
        w.writeheader()
        w.writerows({**s, **flat_differences(s)} for s in summary)
    return path


def flat_differences(s: dict) -> dict:
    """A row's paired differences as flat fields: <metric>_diff, _diff_lo, _diff_hi, _diff_n."""
    out = {}
    for key, p in (s.get("vs") or {}).items():
        out.update({f"{key}_diff": p["diff"], f"{key}_diff_lo": p["lo"], f"{key}_diff_hi": p["hi"]})
        out[f"{key}_diff_n"] = p["n"]
    return out


def write_items_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(ITEM_FIELDS), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path
