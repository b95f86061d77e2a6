"""The evaluation task, without a command line: `check(cfg)` (everything checkable before a model
is built) and `evaluate(cfg)` (sample or resume every method x item x seed, score, tabulate).
flipsketch-eval (eval.py) and `evaluation.api.run_eval` call it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..errors import UserError


def check_request(cfg: DictConfig) -> list[int]:
    from ..checks import as_seeds
    from ..outputs import check_output_config

    seeds = as_seeds(cfg.seeds)
    check_output_config(cfg.output)
    return seeds


def scoring_policy(cfg: DictConfig):
    """The one scoring policy of this evaluation (cfg.metrics), checked."""
    from ..metrics import ScoringPolicy

    return ScoringPolicy.from_config(cfg.metrics)


def t2v_choice(cfg: DictConfig) -> str:
    from ..checks import as_choice

    choice = as_choice(cfg.metrics.get("t2v", "clip"), "metrics.t2v", ("xclip", "clip"))
    if choice == "xclip" and not cfg.metrics.get("xclip"):
        raise UserError(
            "metrics.t2v=xclip needs metrics.xclip (an XClipScorer config, see conf/metrics/clip.yaml)"
        )
    return choice


def build_scorers(cfg: DictConfig, device) -> tuple:
    """(S2V CLIP scorer, T2V scorer or None for per-frame CLIP T2V), from cfg.metrics."""
    from ..cli import instantiate_checked
    from ..errors import MissingWeightsError

    scorer = instantiate_checked(cfg.metrics.scorer, device=str(device))
    if t2v_choice(cfg) == "clip":
        return scorer, None
    try:
        return scorer, instantiate_checked(cfg.metrics.xclip, device=str(device))
    except MissingWeightsError as exc:
        raise MissingWeightsError(f"{exc} (or metrics.t2v=clip: per-frame CLIP T2V instead)") from None


def check(cfg: DictConfig) -> None:
    """Everything checkable without building a model or writing a file: settings and their
    types, every method name and variant, the benchmark's files, the samples folder."""
    from ..checks import as_bool, as_int, as_str, check_out_dir, check_own_folder, reject_nonfinite
    from ..config import SamplerConfig
    from ..models.loaders import resolve_device
    from ..models.registry import check_model_config
    from .benchmark import check_benchmark
    from .methods import check_names, variant_method
    from .shard import Shard

    reject_nonfinite(cfg)
    check_request(cfg)
    SamplerConfig.from_dict(OmegaConf.to_container(cfg.sampler, resolve=True))
    for name in check_names(cfg):
        if name in (cfg.get("variants") or {}):
            variant_method(cfg, name, cfg.variants[name])
    check_model_config(cfg.model)
    for key in ("overwrite", "progress"):
        as_bool(cfg.get(key, False), key)
    from ..threads import parse_threads

    parse_threads(cfg.get("threads"), "threads")
    parse_threads(cfg.get("torch_threads"), "torch_threads")
    as_int(cfg.get("batch_seeds", 1), "batch_seeds", 1, 1024)
    as_bool(cfg.get("reuse_sketch", True), "reuse_sketch")
    resolve_device(as_str(cfg.device, "device"), as_str(cfg.dtype, "dtype"))
    Shard.of(cfg)
    check_benchmark(cfg.benchmark)
    check_out_dir(cfg.samples_dir, "samples_dir")
    if not _legacy_samples_dir(Path(str(cfg.samples_dir)), cfg.benchmark):
        check_own_folder(cfg.samples_dir, "samples_dir")  # the user's own folder is never written into
    scoring_policy(cfg)
    t2v_choice(cfg)
    stats_settings(cfg)


def stats_settings(cfg: DictConfig):
    """How the intervals are drawn (cfg.stats: bootstrap, confidence, seed), checked."""
    from ..stats import StatsSettings

    node = cfg.get("stats")
    return StatsSettings.from_config(OmegaConf.to_container(node, resolve=True) if node else None)


def _legacy_samples_dir(folder: Path, benchmark) -> bool:
    """A samples folder written before the marker existed: only <benchmark>/ folders in it."""
    from ..cli import CONF_DIR

    names = {p.stem for p in (CONF_DIR / "benchmark").glob("*.yaml")}
    names.add(str(benchmark.get("name") or "benchmark"))
    return folder.is_dir() and all(p.is_dir() and p.name in names for p in folder.iterdir())


def evaluate(cfg: DictConfig) -> dict:
    """The task: check everything, sample (or resume) every method x item x seed, score, tabulate."""
    from ..models.loaders import resolve_device
    from .benchmark import load_benchmark
    from .context import EvalContext
    from .evaluator import Evaluator, write_json_atomic
    from .methods import resolve_methods
    from .overlap import overlap_warnings
    from .shard import Shard, await_all, run_shard, shard_result
    from .table import sampler_line, summarize, to_markdown, write_items_csv, write_summary_csv
    from .wandb_log import WandbRun

    check(cfg)
    seeds = check_request(cfg)
    methods = resolve_methods(cfg)
    run_dir = Path(str(cfg.paths.output_dir))
    items = load_benchmark(cfg.benchmark, run_dir / "benchmark")
    overlap = overlap_warnings(OmegaConf.to_container(cfg.model, resolve=True), items)
    for line in overlap:
        print(f"warning: {line}", file=sys.stderr)
    shard = Shard.of(cfg)
    device, dtype = resolve_device(shard.device(str(cfg.device)), str(cfg.dtype))
    ctx = EvalContext(cfg, device, dtype, progress=bool(cfg.progress))
    scorer, t2v_scorer = build_scorers(cfg, device)
    policy = scoring_policy(cfg)
    bench = str(cfg.benchmark.get("name") or "benchmark")
    from ..checks import mark_own_folder

    mark_own_folder(Path(str(cfg.samples_dir)), "flipsketch-eval")
    evaluator = Evaluator(
        ctx,
        methods,
        items,
        seeds,
        scorer,
        Path(str(cfg.samples_dir)) / bench,
        fps=int(cfg.output.fps),
        formats=tuple(cfg.output.formats),
        policy=policy,
        t2v_scorer=t2v_scorer,
        overwrite=bool(cfg.overwrite),
        batch_seeds=int(cfg.get("batch_seeds", 1) or 1),
    )
    threads = _set_threads(cfg)
    if shard.active:  # sharded (evaluation.shard): this worker's units, then gather or stop
        try:
            mine = run_shard(evaluator, shard) if shard.samples else []
            if shard.gathers:
                await_all(evaluator, shard)  # then the table over every unit, as one process would
        except BaseException:
            _restore_threads(threads)
            raise
        if not shard.gathers:
            _restore_threads(threads)
            print(f"{shard.describe()}: {len(mine)} unit(s) done ({evaluator.counts})")
            return shard_result(mine, evaluator, shard)
    wb = WandbRun.start(cfg, run_dir, name=f"eval-{bench}-{ctx.model_tag()}{_job_suffix()}")
    try:
        rows = evaluator.run()
        stats = stats_settings(cfg)
        summary = summarize(rows, methods, stats)
        t2v_name = rows[0]["t2v_scorer"] if rows else "?"
        title = (
            f"FlipSketch evaluation: benchmark {bench} ({_n(len(items), 'sketch')} x {_n(len(seeds), 'seed')}), "
            f"model {ctx.model_tag()}, {cfg.sampler.num_inference_steps} steps, {cfg.sampler.num_frames} frames; "
            f"S2V: CLIP {scorer.backbone}; T2V: {t2v_name}{_job_label()}\n"
            f"Scoring: {policy.describe()} (metrics.postprocess={policy.postprocess}, "
            f"metrics.frames={policy.frames}, metrics.include_frame0={str(policy.include_frame0).lower()})\n"
            f"{sampler_line(summary)}"
        )
        table = to_markdown(summary, title, stats)
        if overlap:
            table += "\n" + "".join(f"> **Train/eval overlap:** {line}.\n" for line in overlap)
        run_dir.mkdir(parents=True, exist_ok=True)
        sheets = evaluator.contact_sheets(run_dir / "contact_sheets")
        (run_dir / "results.md").write_text(
            table + sheets_markdown(sheets, run_dir, seeds[0]), encoding="utf-8"
        )
        out = {
            "table": table,
            "summary": summary,
            "rows": rows,
            "counts": dict(evaluator.counts),
            "backbone": scorer.backbone,
            "overlap": overlap,
            "t2v_scorer": t2v_name,
            "policy": policy.to_dict(),
            "contact_sheets": {k: str(v) for k, v in sheets.items()},
            "run_dir": str(run_dir),
            "samples_dir": str(evaluator.root),
            "results_md": str(run_dir / "results.md"),
            "results_csv": str(write_summary_csv(run_dir / "results.csv", summary)),
            "items_csv": str(write_items_csv(run_dir / "items.csv", rows)),
            "videos": [r["folder"] for r in rows],
            "metrics": {f"{s['method']}/{k[:-5]}": s[k] for s in summary for k in s if k.endswith("_mean")},
            **interval_fields(rows, summary, stats),
        }
        write_json_atomic(run_dir / "metrics.json", run_metrics(out))
        print(table)
        if wb is not None:
            wb.log(rows, summary, sheets)
        return out
    finally:
        if wb is not None:
            wb.finish()
        import torch

        torch.set_num_threads(threads)


def interval_fields(rows: list[dict], summary: list[dict], stats) -> dict:
    """`intervals` {<method>/<metric>: [lo, hi]}, `differences` {<method>/<metric>: paired difference
    from the reference row}, `units` {<method>/<metric>: {<item>/seed<S>: value}} (a sweep pairs them)."""
    from .table import COLUMNS, units

    keys = [k for k, _, _ in COLUMNS]
    return {
        "stats": {"bootstrap": stats.bootstrap, "confidence": stats.confidence, "seed": stats.seed},
        "intervals": {f"{s['method']}/{k}": [s[f"{k}_lo"], s[f"{k}_hi"]] for s in summary for k in keys},
        "differences": {
            f"{s['method']}/{k}": {**p, "reference": s["reference"]}
            for s in summary
            for k, p in (s.get("vs") or {}).items()
        },
        "units": {f"{s['method']}/{k}": units(rows, s["method"], k) for s in summary for k in keys},
    }


def run_metrics(out: dict) -> dict:
    """The run folder's metrics.json: scorers, means, intervals and paired differences (no rows)."""
    keys = ("backbone", "t2v_scorer", "policy", "stats", "metrics", "intervals", "differences")
    return {k: out[k] for k in keys}


def sheets_markdown(sheets: dict, run_dir: Path, seed: int) -> str:
    """The contact sheets embedded in results.md (paths relative to it)."""
    if not sheets:
        return ""
    lines = [
        "",
        f"## Contact sheets (seed {seed})",
        "",
        "Per item: the sketch (framed in blue), then each method's frames exactly as scored.",
        "",
    ]
    for item, p in sheets.items():
        lines += [f"![{item}]({Path(p).relative_to(run_dir).as_posix()})", ""]
    return "\n".join(lines)


def _job_suffix() -> str:
    """`-job<N>` inside a Hydra multirun, so the W&B runs of a sweep tell themselves apart."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        return f"-job{hc.job.num}" if hc.mode == RunMode.MULTIRUN else ""
    except (ImportError, ValueError):
        return ""


def _job_label() -> str:
    """`; sweep job N: <its overrides>` inside a Hydra multirun, so each job's table says which it is."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return ""
        return f"; sweep job {hc.job.num}: {' '.join(hc.overrides.task)}"
    except (ImportError, ValueError):
        return ""


def _n(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else ('es' if word.endswith('h') else 's')}"


def _restore_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _set_threads(cfg) -> int:
    """Set torch's CPU thread count for the run by `flipsketch.threads` (`threads`, or its older
    name `torch_threads`; auto: the cores free at start); returns the previous count to restore."""
    import torch

    from ..threads import config_threads, use_threads

    before = torch.get_num_threads()
    use_threads(config_threads(cfg))
    return before
