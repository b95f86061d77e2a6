"""Sweeps that summarise themselves: every job of a Hydra multirun writes `job_result.json` (its
overrides, the metric a sweeper optimises, all its metrics); when the multirun ends,
`SweepSummary` (a Hydra callback, conf/hydra/default.yaml) writes one table over all jobs to the
multirun folder, `results.md` and `results.csv`, with the swept values as columns, and names the
best job by `optimized_metric` (`optimized_mode`: max or min) only when it is separated from the
runner-up beyond the intervals (flipsketch.stats.clear_best), else "no clear best" and the seeds a
difference of the observed size would need. Pictures, drawn with matplotlib and
embedded in results.md: `sweep.png` (the optimised metric against one swept number) and, when the
sweep is over one sampler knob of an evaluation, `tradeoff.png` (motion against Chamfer and
against S2V, one labelled point per value)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from .errors import UserError
from .stats import StatsSettings, clear_best, interval_text, n_text

JOB_RESULT = "job_result.json"


def write_job_result(
    run_dir: Path,
    overrides: list[str],
    metric: str | None,
    value,
    metrics: dict,
    labels: dict | None = None,
    scoring: str | None = None,
    extra: dict | None = None,
) -> Path:
    """<job>/job_result.json. `labels`: what scored each metric (e.g. "full/s2v" -> "CLIP
    open_clip:ViT-B-32/openai; binarize 1x, 10 frames, frame 0 out"), shown in the combined table's
    column headers as the per-job tables show theirs; `scoring`: the scoring policy in words;
    `extra`: {units: {metric: {unit: value}}, intervals: {metric: [lo, hi]}, stats: {...}}, what
    the combined table compares jobs by (the units of the recorded metrics only)."""

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
    extra = extra or {}
    keep = record["metrics"]
    units = {k: {str(u): number(v) for u, v in d.items() if number(v) is not None}
             for k, d in (extra.get("units") or {}).items() if k in keep}  # fmt: skip
    if units:
        record["units"] = units
    spans = {k: [number(x) for x in v] for k, v in (extra.get("intervals") or {}).items() if k in keep}
    if spans:
        record["intervals"] = spans
    if extra.get("stats"):
        record["stats"] = dict(extra["stats"])
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
    """The job with the best optimised value (by value alone; `verdict` says whether it is clear)."""
    ranked = _ranked(jobs, mode)
    return ranked[0] if ranked else None


def _ranked(jobs: list[dict], mode: str) -> list[dict]:
    scored = [j for j in jobs if j.get("value") is not None]
    return sorted(scored, key=lambda j: j["value"], reverse=mode == "max")


def _standing(job: dict, metric: str | None) -> dict:
    """What clear_best compares of one job: its value, units and interval of `metric`."""
    lo, hi = ((job.get("intervals") or {}).get(metric) or [None, None])[:2]
    return {"value": job["value"], "units": (job.get("units") or {}).get(metric) or {}, "lo": lo, "hi": hi}


def verdict(jobs: list[dict], metric: str | None, mode: str, stats: StatsSettings | None = None) -> dict:
    """{best (None when not clear), leader, runner_up, clear (True/False/None: untestable), how,
    diff, lo, hi, n, sd, n_needed}: the leader is named best only when separated from the
    runner-up (paired interval on shared units excludes 0, else non-overlapping intervals)."""
    ranked = _ranked(jobs, mode)
    if not ranked:
        return {"best": None, "leader": None, "runner_up": None, "clear": None, "how": "none"}
    if len(ranked) == 1:
        return {"best": ranked[0], "leader": ranked[0], "runner_up": None, "clear": None, "how": "one"}
    lead, second = ranked[:2]
    v = clear_best(_standing(lead, metric), _standing(second, metric), stats)
    best = lead if v["clear"] in (True, None) else None  # None: one number per job, nothing to test
    return {**v, "best": best, "leader": lead, "runner_up": second}


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
        rows[-1]["intervals"] = dict(j.get("intervals") or {})
    return ["job", *swept, *metric_keys], rows, best_job(jobs, mode)


def column_labels(jobs: list[dict]) -> dict[str, str]:
    """metric -> what scored it, from the jobs' labels (jobs that disagree: every label, joined)."""
    seen: dict[str, list[str]] = {}
    for j in jobs:
        for k, v in (j.get("labels") or {}).items():
            if v not in seen.setdefault(k, []):
                seen[k].append(v)
    return {k: " | ".join(v) for k, v in seen.items()}


def _cell(v: Any, span=None) -> str:
    if isinstance(v, float):
        if span and all(isinstance(x, float) for x in span):
            return f"{v:.4g} [{span[0]:.4g}, {span[1]:.4g}]"
        return f"{v:.4g}"
    return str(v)


def _swept_text(job: dict, columns: list[str]) -> str:
    return " ".join(o for o in job["overrides"] if _split(o)[0] in columns) or "no swept values"


def verdict_lines(
    v: dict, metric: str | None, mode: str, columns: list[str], stats: StatsSettings
) -> list[str]:
    """The sentence under the table: the best job, or "No clear best" and the seeds it would take."""
    lead, second = v["leader"], v["runner_up"]
    if lead is None:
        return [f"No job reported {metric}."]
    head = f"{lead['job']} ({_swept_text(lead, columns)}): {metric} = {lead['value']:.4g} ({mode})"
    if v["how"] == "one":
        return [f"Best job: {head}; the only job, nothing to compare"]
    if v["how"] == "none":
        return [f"Best job: {head}; one number per job, no interval: not tested against the runner-up"]
    rival = f"job {second['job']} ({_swept_text(second, columns)})"
    if v["how"] == "intervals":
        if v["clear"]:
            return [f"Best job: {head}; its {stats.percent} interval does not overlap {rival}'s"]
        return [f"No clear best: job {head} leads {rival}, but their {stats.percent} intervals overlap "
                "(no shared units to pair; more seeds narrow both)"]  # fmt: skip
    diff = interval_text(v["diff"], v["lo"], v["hi"], 4, signed=True)
    paired = f"paired difference from {rival} {diff} on {v['n']} shared (sketch, seed) units"
    if v["clear"]:
        return [f"Best job: {head}; {paired}, the {stats.percent} interval excludes 0"]
    units = (lead.get("units") or {}).get(metric) or {}
    sketches = max(1, len({u.rsplit("/", 1)[0] for u in units}))
    need = v["n_needed"]
    seeds = (
        "?"
        if need is None
        else ("> " + str(10000 // sketches) if need > 10000 else str(-(-need // sketches)))
    )
    return [
        f"No clear best: job {head} leads, but the {paired} includes 0.",
        f"At the observed spread (paired sd {v['sd']:.4g}, difference {v['diff']:+.4g}), a paired test at 5% "
        f"with 80% power needs n = ((1.96 + 0.84) sd / |diff|)^2 = {n_text(need)} units, about {seeds} "
        f"seeds per sketch over {sketches} sketch(es) (now {v['n']} units).",
    ]


def write_summary(
    sweep_dir: Path,
    metric: str | None,
    mode: str = "max",
    title: str = "",
    stats: StatsSettings | None = None,
) -> dict | None:
    """results.md + results.csv in the multirun folder; None (nothing written) when no job finished."""
    sweep_dir = Path(sweep_dir)
    jobs = collect(sweep_dir) if sweep_dir.is_dir() else []
    if not jobs:
        return None
    stats = stats or StatsSettings()
    columns, rows, _ = summary_table(jobs, metric, mode)
    v = verdict(jobs, metric, mode, stats)
    best = v["best"]
    spans = sorted({k for r in rows for k in r["intervals"] if k in columns}, key=columns.index)
    with open(sweep_dir / "results.csv", "w", newline="", encoding="utf-8") as fh:
        extra = [f"{k}_{e}" for k in spans for e in ("lo", "hi")]
        w = csv.DictWriter(fh, fieldnames=[*columns, *extra], extrasaction="ignore")
        w.writeheader()
        for r in rows:
            ci = {
                f"{k}_{e}": x
                for k, span in r["intervals"].items()
                for e, x in zip(("lo", "hi"), span, strict=False)
            }
            w.writerow({**r, **ci})
    lines = [title or f"Sweep over {len(jobs)} jobs ({sweep_dir})", ""]
    labels = column_labels(jobs)
    scoring = sorted({j["scoring"] for j in jobs if j.get("scoring")})
    if scoring:
        lines += [f"Scoring: {'; or '.join(scoring)}", ""]
    if spans:
        lines += [
            f"Cells: mean over (sketch, seed) units [{stats.percent} percentile bootstrap interval, "
            f"{stats.bootstrap} resamples]; the best job is named only when separated from the runner-up "
            "beyond the intervals (docs/sweeps.md).",
            "",
        ]
    lines.append("| " + " | ".join(f"{c} ({labels[c]})" if c in labels else c for c in columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for r in rows:
        mark = " **(best)**" if best is not None and r["job"] == best["job"] else ""
        cells = [_cell(r.get(c, ""), r["intervals"].get(c)) + (mark if c == "job" else "") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *verdict_lines(v, metric, mode, columns, stats)]
    plot = plot_sweep(sweep_dir / "sweep.png", columns, rows, metric, labels.get(metric or ""))
    if plot is not None:
        lines += ["", f"Plot: {plot.name} ({metric} against {columns[1]})", "", f"![{metric}]({plot.name})"]
    trade = plot_tradeoff(sweep_dir / "tradeoff.png", columns, rows, metric, labels)
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
    return {
        "table": text,
        "best": best,
        "verdict": v,
        "jobs": jobs,
        "results_md": str(sweep_dir / "results.md"),
    }


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


def _errors(values: list[float], spans: list) -> list[list[float]] | None:
    """matplotlib's (below, above) error lengths from [lo, hi] intervals; None when any is missing."""
    if not spans or any(not sp or not all(isinstance(x, float) for x in sp) for sp in spans):
        return None
    return [[max(0.0, v - sp[0]) for v, sp in zip(values, spans, strict=True)],
            [max(0.0, sp[1] - v) for v, sp in zip(values, spans, strict=True)]]  # fmt: skip


def _scorer_title(metric: str, label: str | None) -> str:
    return f"{metric} (scored by {label})" if label else metric


def _sweep_figure(columns: list[str], rows: list[dict], metric: str | None, label: str | None = None):
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
            pts.append((x, float(y), (r.get("intervals") or {}).get(metric)))
    if len(pts) < 2:
        return None
    pts.sort(key=lambda p: p[0])
    err = _errors([p[1] for p in pts], [p[2] for p in pts])
    what = " (mean and 95% interval)" if err is not None else ""
    fig, (ax,) = _figure(560, 380, f"{metric} against {swept[0]}{what}")
    ax.set_xlabel(swept[0], **_TEXT)
    ax.set_ylabel(metric, **_TEXT)
    ax.set_title(_scorer_title(metric, label), loc="left", fontsize=8, color="#5a5a5a", wrap=True, **_TEXT)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    ax.plot(xs, ys, "-", color=POINT, linewidth=2)
    ax.errorbar(xs, ys, yerr=err, fmt="o", color=POINT, ecolor=POINT, elinewidth=1.2, capsize=4, capthick=1.2,
                markersize=5, markeredgewidth=0)  # fmt: skip
    ax.margins(x=0.05, y=0.1)
    _labels(fig, ax, list(zip(xs, ys, strict=True)), [f"{y:.4g}" for y in ys])
    return fig


def plot_sweep(
    path: Path, columns: list[str], rows: list[dict], metric: str | None, label: str | None = None
) -> Path | None:
    """sweep.png: the optimised metric against the swept value, when exactly one numeric value is
    swept (e.g. sampler.lambda_); None (nothing drawn) otherwise. Drawn with matplotlib: a titled
    plot with round ticks and grid lines on both axes, each point labelled with its value, the
    interval as an error bar where the jobs recorded one, the scorer (`label`) above the plot."""
    fig = _sweep_figure(columns, rows, metric, label)
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


def _tradeoff_figure(columns: list[str], rows: list[dict], metric: str | None, scorers: dict | None = None):
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
    if any(span_of for r in pts for span_of in (r.get("intervals") or {}).values()):
        title += " (bars: 95% intervals)"
    fig, axes = _figure(920, 380, title, panels=len(TRADEOFF_Y))
    xs = [r[f"{method}/motion"] for r in pts]
    labels = [f"{knob}={r[swept[0]]}" for r in pts]
    ys_of = {key: [r[f"{method}/{key}"] for r in pts] for key, _ in TRADEOFF_Y}
    span = lambda r, k: (r.get("intervals") or {}).get(f"{method}/{k}")  # noqa: E731
    xerr = _errors(xs, [span(r, "motion") for r in pts])
    for ax, (key, name) in zip(axes, TRADEOFF_Y, strict=True):
        ys = ys_of[key]
        yerr = _errors(ys, [span(r, key) for r in pts])
        scorer = (scorers or {}).get(f"{method}/{key}")
        ax.set_xlabel("motion (px / frame)", **_TEXT)
        ax.set_title(
            name + ("\n" + scorer.replace("; ", ";\n") if scorer else ""),
            loc="left",
            fontsize=9,
            color="#5a5a5a",
            **_TEXT,
        )
        ax.plot(xs, ys, color=JOIN, linewidth=0.72)
        ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, fmt="o", color=POINT, ecolor=POINT, elinewidth=1,
                    capsize=3, capthick=1, markersize=5.8, markeredgewidth=0)  # fmt: skip
        ax.margins(x=0.08, y=0.1)
    for ax, (key, _) in zip(axes, TRADEOFF_Y, strict=True):  # after every panel is drawn: the layout
        _labels(fig, ax, list(zip(xs, ys_of[key], strict=True)), labels)
    return fig, method


def plot_tradeoff(
    path: Path, columns: list[str], rows: list[dict], metric: str | None, scorers: dict | None = None
):
    """tradeoff.png: for a sweep over exactly one sampler knob (e.g. sampler.lambda_=0,0.5,1), motion
    (x) against Chamfer and against S2V (y), one point per value labelled with it, joined in value
    order. Returns (path, method shown) or None (nothing drawn). Drawn with matplotlib."""
    drawn = _tradeoff_figure(columns, rows, metric, scorers)
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
        node = config.get("stats")
        try:
            stats = StatsSettings.from_config(dict(node) if node else None)
        except UserError:  # the jobs already refused it; the defaults here
            stats = StatsSettings()
        out = write_summary(Path(str(config.hydra.sweep.dir)), metric and str(metric), mode, stats=stats)
        if out is not None:
            print(out["table"])
            print(f"Combined table: {out['results_md']}")
