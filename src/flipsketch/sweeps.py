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


def write_job_result(
    run_dir: Path,
    overrides: list[str],
    metric: str | None,
    value,
    metrics: dict,
    labels: dict | None = None,
    scoring: str | None = None,
) -> Path:
    """<job>/job_result.json. `labels`: what scored each metric (e.g. "full/s2v" -> "CLIP
    open_clip:ViT-B-32/openai; binarize 1x, 10 frames, frame 0 out"), shown in the combined table's
    column headers as the per-job tables show theirs; `scoring`: the scoring policy in words."""

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
    if labels:
        record["labels"] = {str(k): str(v) for k, v in labels.items()}
    if scoring:
        record["scoring"] = str(scoring)
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


def column_labels(jobs: list[dict]) -> dict[str, str]:
    """metric -> what scored it, from the jobs' labels (jobs that disagree: every label, joined)."""
    seen: dict[str, list[str]] = {}
    for j in jobs:
        for k, v in (j.get("labels") or {}).items():
            if v not in seen.setdefault(k, []):
                seen[k].append(v)
    return {k: " | ".join(v) for k, v in seen.items()}


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
    labels = column_labels(jobs)
    scoring = sorted({j["scoring"] for j in jobs if j.get("scoring")})
    if scoring:
        lines += [f"Scoring: {'; or '.join(scoring)}", ""]
    lines.append("| " + " | ".join(f"{c} ({labels[c]})" if c in labels else c for c in columns) + " |")
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


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """About `n` round tick values (1, 2, 2.5 or 5 x 10^k apart) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(k * mag for k in (1, 2, 2.5, 5, 10) if k * mag >= raw * (1 - 1e-9))
    first = math.ceil(lo / step - 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= hi + step * 1e-9:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def tick_labels(ticks: list[float]) -> list[str]:
    """The ticks written with as few decimals as keep them exact and apart (0.99705 and 0.9971
    must not both read "0.9971")."""
    if len(ticks) < 2:
        return [f"{t:.4g}" for t in ticks]
    step = min(abs(b - a) for a, b in zip(ticks, ticks[1:], strict=False)) or 1.0
    for decimals in range(0, 12):
        labels = [f"{t:.{decimals}f}" for t in ticks]
        if len(set(labels)) == len(labels) and all(
            abs(float(x) - t) < step * 1e-6 for x, t in zip(labels, ticks, strict=True)
        ):
            return labels
    return [f"{t:.6g}" for t in ticks]


def _axes(d, box, x_range, y_range, font, x_label: str = "", y_label: str = ""):
    """The frame, grid lines and labelled ticks of a plot in `box` (left, top, right, bottom);
    returns at(x, y) -> pixel."""
    left, top, right, bottom = box
    x0, x1 = x_range
    y0, y1 = y_range

    def at(x, y):
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)

    d.rectangle(box, outline=(160, 160, 160))
    x_ticks = nice_ticks(x0, x1)
    for t, label in zip(x_ticks, tick_labels(x_ticks), strict=True):
        px = at(t, y0)[0]
        d.line((px, top, px, bottom), fill=(235, 235, 235))
        d.line((px, bottom, px, bottom + 4), fill=(100, 100, 100))
        d.text((px - d.textlength(label, font=font) / 2, bottom + 6), label, fill=(60, 60, 60), font=font)
    y_ticks = nice_ticks(y0, y1)
    for t, label in zip(y_ticks, tick_labels(y_ticks), strict=True):
        py = at(x0, t)[1]
        d.line((left, py, right, py), fill=(235, 235, 235))
        d.line((left - 4, py, left, py), fill=(100, 100, 100))
        d.text((left - 7 - d.textlength(label, font=font), py - 7), label, fill=(60, 60, 60), font=font)
    d.rectangle(box, outline=(160, 160, 160))
    if x_label:
        d.text(
            ((left + right - d.textlength(x_label, font=font)) / 2, bottom + 24),
            x_label,
            fill="black",
            font=font,
        )
    if y_label:
        d.text((left, top - 18), y_label, fill=(90, 90, 90), font=font)
    return at


def _padded(values: list[float], pad: float) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi <= lo:
        lo, hi = lo - 0.5 * (abs(lo) or 1), hi + 0.5 * (abs(hi) or 1)
    return lo - pad * (hi - lo), hi + pad * (hi - lo)


def plot_sweep(path: Path, columns: list[str], rows: list[dict], metric: str | None) -> Path | None:
    """sweep.png: the optimised metric against the swept value, when exactly one numeric value is
    swept (e.g. sampler.lambda_); None (nothing drawn) otherwise. Drawn with PIL alone: a titled
    plot with round ticks on both axes."""
    from PIL import Image, ImageDraw

    from .fonts import drawable, label_font

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
    font, unicode = label_font(12)
    w, h = 560, 360
    box = (70, 48, w - 24, h - 56)
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.text((box[0], 8), drawable(f"{metric} against {swept[0]}", unicode), fill="black", font=font)
    at = _axes(
        d,
        box,
        _padded([p[0] for p in pts], 0.05),
        _padded([p[1] for p in pts], 0.1),
        font,
        x_label=drawable(swept[0], unicode),
        y_label=drawable(metric, unicode),
    )
    d.line([at(x, y) for x, y in pts], fill=(30, 90, 200), width=2)
    for x, y in pts:
        cx, cy = at(x, y)
        d.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=(30, 90, 200))
        label = f"{y:.6g}"
        width = d.textlength(label, font=font)
        d.text(
            (cx + 5 if cx + 5 + width < w - 4 else cx - 5 - width, cy - 16), label, fill="black", font=font
        )
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

    from .fonts import drawable, label_font

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
    font, unicode = label_font(12)
    pw, h = 460, 380
    img = Image.new("RGB", (2 * pw, h), "white")
    d = ImageDraw.Draw(img)
    title = f"{method}: motion against closeness to the sketch, one point per {swept[0]}"
    d.text((70, 6), drawable(title, unicode), fill="black", font=font)
    xs = [r[f"{method}/motion"] for r in pts]
    for panel, (key, name) in enumerate(TRADEOFF_Y):
        ys = [r[f"{method}/{key}"] for r in pts]
        left = panel * pw
        labels = [drawable(f"{knob}={r[swept[0]]}", unicode) for r in pts]
        _scatter(d, (left + 70, 52, left + pw - 20, h - 60), xs, ys, labels, font, drawable(name, unicode))
    img.save(path)
    return path, method


def _scatter(
    d, box, xs: list[float], ys: list[float], labels: list[str], font=None, y_label: str = ""
) -> None:
    """Points (x, y) in `box` (left, top, right, bottom), joined in the given order, each labelled,
    on axes with round ticks."""
    right = box[2]
    at = _axes(d, box, _padded(xs, 0.08), _padded(ys, 0.1), font, "motion (px / frame)", y_label)
    d.line([at(x, y) for x, y in zip(xs, ys, strict=True)], fill=(150, 170, 220), width=1)
    for x, y, label in zip(xs, ys, labels, strict=True):
        cx, cy = at(x, y)
        d.ellipse((cx - 4, cy - 4, cx + 4, cy + 4), fill=(30, 90, 200))
        width = d.textlength(label, font=font)
        d.text(
            (cx + 6 if cx + 6 + width < right else cx - 6 - width, cy - 16), label, fill="black", font=font
        )


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
