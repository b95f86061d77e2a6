"""Sweeps that summarise themselves: every job of a Hydra multirun writes `job_result.json` (its
overrides, the metric a sweeper optimises, all its metrics); when the multirun ends,
`SweepSummary` (a Hydra callback, conf/hydra/default.yaml) writes one table over all jobs to the
multirun folder, `results.md` and `results.csv`, with the swept values as columns, and names the
best job by `optimized_metric` (`optimized_mode`: max or min). Pictures, drawn with matplotlib and
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


POINT = "#1e5ac8"  # (30, 90, 200): the points, and the line of sweep.png
JOIN = "#96aadc"  # (150, 170, 220): the thin line joining a trade-off's points in value order
GRID = "#ebebeb"  # (235, 235, 235): grid lines at the ticks
_TEXT = {"parse_math": False}  # labels are metric names and override values, never mathtext ("$")


def _figure(width: int, height: int, title: str, panels: int = 1):
    """A `width` x `height` px figure of `panels` axes side by side, `title` at its top left; Agg
    alone (no pyplot, no window). matplotlib's own DejaVu Sans draws λ; ticks are round (1, 2, 2.5
    or 5 x 10^k apart) and written with the decimals that keep them apart (0.99715, not an offset)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / 100, height / 100), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title, x=0.015, ha="left", fontsize=11, **_TEXT)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, color=GRID, linewidth=0.72)  # 1 px at 100 dpi
        ax.set_axisbelow(True)
        ax.spines[:].set_color("#a0a0a0")
        ax.tick_params(colors="#3c3c3c", labelsize=9)
        ax.ticklabel_format(useOffset=False)
    return fig, list(axes)


def _labels(fig, ax, points, labels: list[str]) -> None:
    """Each point's label above it on the right, or on its left where the right would leave the plot."""
    fig.canvas.draw()  # lays the figure out: the axes' final place
    fig.set_layout_engine("none")  # and keeps it there while the labels are placed
    box, renderer = ax.get_window_extent(), fig.canvas.get_renderer()
    for (x, y), label in zip(points, labels, strict=True):
        text = ax.annotate(label, (x, y), xytext=(5, 4), textcoords="offset points", fontsize=9, **_TEXT)
        if text.get_window_extent(renderer).x1 > box.x1 - 2:
            text.set(x=-5, ha="right")  # xytext is the text's position in offset points


def _sweep_figure(columns: list[str], rows: list[dict], metric: str | None):
    """The figure of sweep.png (see plot_sweep), or None."""
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
    fig, (ax,) = _figure(560, 360, f"{metric} against {swept[0]}")
    ax.set_xlabel(swept[0], **_TEXT)
    ax.set_title(metric, loc="left", fontsize=10, color="#5a5a5a", **_TEXT)
    ax.plot(*zip(*pts, strict=True), "o-", color=POINT, linewidth=2, markersize=5, markeredgewidth=0)
    ax.margins(x=0.05, y=0.1)
    _labels(fig, ax, pts, [f"{y:.6g}" for _, y in pts])
    return fig


def plot_sweep(path: Path, columns: list[str], rows: list[dict], metric: str | None) -> Path | None:
    """sweep.png: the optimised metric against the swept value, when exactly one numeric value is
    swept (e.g. sampler.lambda_); None (nothing drawn) otherwise. Drawn with matplotlib: a titled
    plot with round ticks and grid lines on both axes, each point labelled with its value."""
    fig = _sweep_figure(columns, rows, metric)
    if fig is None:
        return None
    fig.savefig(path, format="png")
    return path


TRADEOFF_Y = (("chamfer", "Chamfer to the sketch (px), lower: closer"), ("s2v", "S2V, higher: closer"))


def _tradeoff_method(keys: set[str], metric: str | None) -> str | None:
    """The method whose motion / Chamfer / S2V a trade-off plot shows: the optimised metric's, else the first."""
    methods = [k.rsplit("/", 1)[0] for k in keys if k.endswith("/motion")]
    ok = [m for m in methods if all(f"{m}/{y}" in keys for y, _ in TRADEOFF_Y)]
    prefer = str(metric or "").rsplit("/", 1)[0]
    return prefer if prefer in ok else (sorted(ok)[0] if ok else None)


def _tradeoff_figure(columns: list[str], rows: list[dict], metric: str | None):
    """(figure of tradeoff.png, method shown) (see plot_tradeoff), or None."""
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
    title = f"{method}: motion against closeness to the sketch, one point per {swept[0]}"
    fig, axes = _figure(920, 380, title, panels=len(TRADEOFF_Y))
    xs = [r[f"{method}/motion"] for r in pts]
    labels = [f"{knob}={r[swept[0]]}" for r in pts]
    ys_of = {key: [r[f"{method}/{key}"] for r in pts] for key, _ in TRADEOFF_Y}
    for ax, (key, name) in zip(axes, TRADEOFF_Y, strict=True):
        ys = ys_of[key]
        ax.set_xlabel("motion (px / frame)", **_TEXT)
        ax.set_title(name, loc="left", fontsize=10, color="#5a5a5a", **_TEXT)
        ax.plot(xs, ys, color=JOIN, linewidth=0.72)
        ax.plot(xs, ys, "o", color=POINT, markersize=5.8, markeredgewidth=0)
        ax.margins(x=0.08, y=0.1)
    for ax, (key, _) in zip(axes, TRADEOFF_Y, strict=True):  # after every panel is drawn: the layout
        _labels(fig, ax, list(zip(xs, ys_of[key], strict=True)), labels)
    return fig, method


def plot_tradeoff(path: Path, columns: list[str], rows: list[dict], metric: str | None):
    """tradeoff.png: for a sweep over exactly one sampler knob (e.g. sampler.lambda_=0,0.5,1), motion
    (x) against Chamfer and against S2V (y), one point per value labelled with it, joined in value
    order. Returns (path, method shown) or None (nothing drawn). Drawn with matplotlib."""
    drawn = _tradeoff_figure(columns, rows, metric)
    if drawn is None:
        return None
    fig, method = drawn
    fig.savefig(path, format="png")
    return path, method


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
