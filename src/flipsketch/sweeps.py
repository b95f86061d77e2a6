"""Sweeps that summarise themselves: every job of a Hydra multirun writes `job_result.json` (its
overrides, the metric a sweeper optimises, all its metrics); when the multirun ends,
`SweepSummary` (a Hydra callback, conf/hydra/default.yaml) writes one table over all jobs to the
multirun folder, `results.md` and `results.csv`, with the swept values as columns, and names the
best job by `optimized_metric` (`optimized_mode`: max or min). Pictures, drawn with PIL and
embedded in results.md: `sweep.png` (the optimised metric against one swept number) and, when the
sweep is over one sampler knob of an evaluation, `tradeoff.png` (motion against Chamfer and
against S2V, one labelled point per value)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

JOB_RESULT = "job_result.json"


def write_job_result(run_dir: Path, overrides: list[str], metric: str | None, value, metrics: dict) -> Path:
    def number(v):
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        return f if math.isfinite(f) else None

    record = {
        "overrides": list(overrides),
        "optimized_metric": metric,
        "value": number(value),
        "metrics": {k: number(v) for k, v in metrics.items() if number(v) is not None},
    }
    path = Path(run_dir) / JOB_RESULT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return path


def _split(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def collect(sweep_dir: Path) -> list[dict]:
    """The finished jobs of a multirun folder, in job order (a failed job has no result)."""
    jobs = []
    for d in sorted(
        Path(sweep_dir).iterdir(),
        key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name),
    ):
        f = d / JOB_RESULT
        if d.is_dir() and f.is_file():
            rec = json.loads(f.read_text(encoding="utf-8"))
            rec["job"] = d.name
            jobs.append(rec)
    return jobs


def best_job(jobs: list[dict], mode: str) -> dict | None:
    scored = [j for j in jobs if j.get("value") is not None]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda j: j["value"])


def summary_table(
    jobs: list[dict], metric: str | None, mode: str
) -> tuple[list[str], list[dict], dict | None]:
    """(columns, rows, best): swept keys (those whose value differs between jobs) then metrics."""
    values: dict[str, set] = {}
    for j in jobs:
        for o in j["overrides"]:
            k, v = _split(o)
            values.setdefault(k, set()).add(v)
    swept = [k for k, vs in values.items() if len(vs) > 1 or len(jobs) == 1]
    metric_keys: list[str] = []
    for j in jobs:
        metric_keys += [k for k in j["metrics"] if k not in metric_keys]
    if metric in metric_keys:  # the optimised metric first
        metric_keys.remove(metric)
        metric_keys.insert(0, metric)
    rows = []
    for j in jobs:
        ov = dict(_split(o) for o in j["overrides"])
        rows.append({"job": j["job"], **{k: ov.get(k, "") for k in swept}, **j["metrics"]})
    return ["job", *swept, *metric_keys], rows, best_job(jobs, mode)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_summary(sweep_dir: Path, metric: str | None, mode: str = "max", title: str = "") -> dict | None:
    """results.md + results.csv in the multirun folder; None (nothing written) when no job finished."""
    sweep_dir = Path(sweep_dir)
    jobs = collect(sweep_dir) if sweep_dir.is_dir() else []
    if not jobs:
        return None
    columns, rows, best = summary_table(jobs, metric, mode)
    with open(sweep_dir / "results.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    lines = [title or f"Sweep over {len(jobs)} jobs ({sweep_dir})", ""]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for r in rows:
        mark = " **(best)**" if best is not None and r["job"] == best["job"] else ""
        lines.append(
            "| " + " | ".join(_cell(r.get(c, "")) + (mark if c == "job" else "") for c in columns) + " |"
        )
    if best is not None:
        swept = " ".join(o for o in best["overrides"] if _split(o)[0] in columns)
        lines += [
            "",
            f"Best job: {best['job']} ({swept or 'no swept values'}): {metric} = {best['value']:.4g} ({mode})",
        ]
    else:
        lines += ["", f"No job reported {metric}."]
    plot = plot_sweep(sweep_dir / "sweep.png", columns, rows, metric)
    if plot is not None:
        lines += [f"Plot: {plot.name} ({metric} against {columns[1]})", "", f"![{metric}]({plot.name})"]
    trade = plot_tradeoff(sweep_dir / "tradeoff.png", columns, rows, metric)
    if trade is not None:
        path, method = trade
        lines += [
            "",
            f"Trade-off ({method}, one point per {columns[1]} value): motion against Chamfer to the sketch "
            "and against S2V",
            "",
            f"![trade-off]({path.name})",
        ]
    text = "\n".join(lines) + "\n"
    (sweep_dir / "results.md").write_text(text, encoding="utf-8")
    return {"table": text, "best": best, "jobs": jobs, "results_md": str(sweep_dir / "results.md")}


def plot_sweep(path: Path, columns: list[str], rows: list[dict], metric: str | None) -> Path | None:
    """sweep.png: the optimised metric against the swept value, when exactly one numeric value is
    swept (e.g. sampler.lambda_); None (nothing drawn) otherwise. Drawn with PIL alone."""
    from PIL import Image, ImageDraw

    swept = [c for c in columns[1:] if not any(isinstance(r.get(c), float) for r in rows)]
    if len(swept) != 1 or metric is None:
        return None
    pts = []
    for r in rows:
        try:
            x, y = float(r[swept[0]]), r.get(metric)
        except (TypeError, ValueError):
            return None
        if y is not None:
            pts.append((x, float(y)))
    if len(pts) < 2:
        return None
    pts.sort()
    w, h, m = 480, 320, 50
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def at(x, y):
        return m + (x - x0) / (x1 - x0) * (w - 2 * m), h - m - (y - y0) / (y1 - y0) * (h - 2 * m)

    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((m, m, w - m, h - m), outline=(180, 180, 180))
    d.line([at(x, y) for x, y in pts], fill=(30, 90, 200), width=2)
    for x, y in pts:
        cx, cy = at(x, y)
        d.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=(30, 90, 200))
        d.text((cx + 4, cy - 12), f"{y:.4g}", fill="black")
        d.text((cx - 8, h - m + 4), f"{x:g}", fill="black")
    d.text((m, 10), f"{metric} against {swept[0]}", fill="black")
    d.text((4, m - 12), f"{y1:.4g}", fill="gray")
    d.text((4, h - m - 2), f"{y0:.4g}", fill="gray")
    img.save(path)
    return path


TRADEOFF_Y = (("chamfer", "Chamfer to the sketch (px), lower: closer"), ("s2v", "S2V, higher: closer"))


def _tradeoff_method(keys: set[str], metric: str | None) -> str | None:
    """The method whose motion / Chamfer / S2V a trade-off plot shows: the optimised metric's, else the first."""
    methods = [k.rsplit("/", 1)[0] for k in keys if k.endswith("/motion")]
    ok = [m for m in methods if all(f"{m}/{y}" in keys for y, _ in TRADEOFF_Y)]
    prefer = str(metric or "").rsplit("/", 1)[0]
    return prefer if prefer in ok else (sorted(ok)[0] if ok else None)


def plot_tradeoff(path: Path, columns: list[str], rows: list[dict], metric: str | None):
    """tradeoff.png: for a sweep over exactly one sampler knob (e.g. sampler.lambda_=0,0.5,1), motion
    (x) against Chamfer and against S2V (y), one point per value labelled with it, joined in value
    order. Returns (path, method shown) or None (nothing drawn). Drawn with PIL alone."""
    from PIL import Image, ImageDraw

    swept = [c for c in columns[1:] if not any(isinstance(r.get(c), float) for r in rows)]
    if len(swept) != 1 or not swept[0].startswith("sampler.") or len(rows) < 2:
        return None
    method = _tradeoff_method({k for r in rows for k in r}, metric)
    if method is None:
        return None
    pts = [
        r
        for r in rows
        if all(isinstance(r.get(f"{method}/{k}"), float) for k in ("motion", "chamfer", "s2v"))
    ]
    if len(pts) < 2:
        return None

    def order(r):
        try:
            return (0, float(r[swept[0]]), "")
        except (TypeError, ValueError):
            return (1, 0.0, str(r[swept[0]]))

    pts.sort(key=order)
    knob = swept[0].split(".", 1)[1]
    pw, h, m = 420, 340, 56
    img = Image.new("RGB", (2 * pw, h), "white")
    d = ImageDraw.Draw(img)
    d.text(
        (m, 6), f"{method}: motion against closeness to the sketch, one point per {swept[0]}", fill="black"
    )
    xs = [r[f"{method}/motion"] for r in pts]
    for panel, (key, title) in enumerate(TRADEOFF_Y):
        ys = [r[f"{method}/{key}"] for r in pts]
        left = panel * pw
        _scatter(d, (left + m, 30, left + pw - 20, h - m), xs, ys, [f"{knob}={r[swept[0]]}" for r in pts])
        d.text((left + m, h - m + 18), "motion (px / frame) ->", fill="black")
        d.text((left + m, 20), title, fill=(90, 90, 90))
    img.save(path)
    return path, method


def _scatter(d, box, xs: list[float], ys: list[float], labels: list[str]) -> None:
    """Points (x, y) in `box` (left, top, right, bottom), joined in the given order, each labelled;
    the axis ranges written at the box's corners."""
    left, top, right, bottom = box
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    pad_x, pad_y = 0.08 * (x1 - x0), 0.1 * (y1 - y0)
    x0, x1, y0, y1 = x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y

    def at(x, y):
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)

    d.rectangle(box, outline=(180, 180, 180))
    d.line([at(x, y) for x, y in zip(xs, ys, strict=True)], fill=(150, 170, 220), width=1)
    for x, y, label in zip(xs, ys, labels, strict=True):
        cx, cy = at(x, y)
        d.ellipse((cx - 4, cy - 4, cx + 4, cy + 4), fill=(30, 90, 200))
        width = d.textlength(label)
        d.text((cx + 6 if cx + 6 + width < right else cx - 6 - width, cy - 12), label, fill="black")
    d.text((left, bottom + 4), f"{x0:.4g}", fill="gray")
    d.text((right - 36, bottom + 4), f"{x1:.4g}", fill="gray")
    d.text((left - 50, bottom - 10), f"{y0:.4g}", fill="gray")
    d.text((left - 50, top), f"{y1:.4g}", fill="gray")


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - Hydra is a dependency
    _HydraCallback = object


class SweepSummary(_HydraCallback):
    """Hydra callback: at the end of a multirun, the combined table over all jobs and the best job."""

    def on_multirun_end(self, config, **kwargs) -> None:
        metric = config.get("optimized_metric")
        mode = str(config.get("optimized_mode") or "max")
        out = write_summary(Path(str(config.hydra.sweep.dir)), metric and str(metric), mode)
        if out is not None:
            print(out["table"])
            print(f"Combined table: {out['results_md']}")
