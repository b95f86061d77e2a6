"""flipsketch-eval: FlipSketch variants and baselines on a benchmark -> videos, metrics, tables, W&B.

flipsketch-eval experiment=tiny_table1                       # CPU, about a minute
flipsketch-eval experiment=paper_table1 model.lora=DIR       # the paper's Table 1, one GPU
flipsketch-eval experiment=paper_ablation model.lora=DIR     # the ablation rows
flipsketch-eval -m experiment=tiny_ablation methods=[full] sampler.lambda_=0,0.25,0.5,0.75,1   # a sweep

Writes <samples_dir>/<benchmark>/<model>/<method>-<hash>/<item>/seed<S>/ (GIF, MP4, PNG frames,
meta.json, metrics.json; a rerun skips finished items) and results.md / results.csv / items.csv
in the run folder (logs/eval/runs/<time>/), printed at the end. Bad input: one line, exit code 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .cli import hydra_cli
from .errors import UserError

log = logging.getLogger(__name__)


def check_request(cfg: DictConfig) -> list[int]:
    from .checks import as_list
    from .outputs import check_output_config

    seeds = as_list(cfg.seeds, "seeds")
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise UserError(f"seeds must be a non-empty list of non-negative integers, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"seeds lists a seed twice: {seeds}")
    check_output_config(cfg.output)
    return seeds


def check(cfg: DictConfig) -> None:
    """Everything checkable without building a model or writing a file: settings and their
    types, every method name and variant, the benchmark's files, the samples folder."""
    from omegaconf import OmegaConf

    from .animate import resolve_device
    from .checks import as_bool, as_int, as_str, check_out_dir, reject_nonfinite
    from .config import SamplerConfig
    from .evaluation.benchmark import check_benchmark
    from .evaluation.methods import check_names, variant_method
    from .models.registry import check_model_config

    reject_nonfinite(cfg)
    check_request(cfg)
    SamplerConfig.from_dict(OmegaConf.to_container(cfg.sampler, resolve=True))
    for name in check_names(cfg):
        if name in (cfg.get("variants") or {}):
            variant_method(cfg, name, cfg.variants[name])
    check_model_config(cfg.model)
    for key in ("overwrite", "progress"):
        as_bool(cfg.get(key, False), key)
    if cfg.get("torch_threads") not in (None, ""):
        as_int(cfg.torch_threads, "torch_threads", 1, 1024)
    resolve_device(as_str(cfg.device, "device"), as_str(cfg.dtype, "dtype"))
    check_benchmark(cfg.benchmark)
    check_out_dir(cfg.samples_dir, "samples_dir")


def evaluate(cfg: DictConfig) -> dict:
    """The task: check everything, sample (or resume) every method x item x seed, score, tabulate."""
    from .animate import resolve_device
    from .cli import instantiate_checked
    from .evaluation.benchmark import load_benchmark
    from .evaluation.context import EvalContext
    from .evaluation.methods import resolve_methods
    from .evaluation.overlap import overlap_warnings
    from .evaluation.runner import Evaluator
    from .evaluation.table import summarize, to_markdown, write_items_csv, write_summary_csv
    from .evaluation.wandb_log import WandbRun

    check(cfg)
    seeds = check_request(cfg)
    methods = resolve_methods(cfg)
    run_dir = Path(str(cfg.paths.output_dir))
    items = load_benchmark(cfg.benchmark, run_dir / "benchmark")
    overlap = overlap_warnings(OmegaConf.to_container(cfg.model, resolve=True), items)
    for line in overlap:
        print(f"warning: {line}", file=sys.stderr)
    device, dtype = resolve_device(str(cfg.device), str(cfg.dtype))
    ctx = EvalContext(cfg, device, dtype, progress=bool(cfg.progress))
    scorer = instantiate_checked(cfg.metrics.scorer, device=str(device))
    bench = str(cfg.benchmark.get("name") or "benchmark")
    evaluator = Evaluator(
        ctx,
        methods,
        items,
        seeds,
        scorer,
        Path(str(cfg.samples_dir)) / bench,
        fps=int(cfg.output.fps),
        formats=tuple(cfg.output.formats),
        skip_first=bool(cfg.metrics.get("skip_first", False)),
        overwrite=bool(cfg.overwrite),
    )
    threads = _set_threads(cfg.get("torch_threads"))
    wb = WandbRun.start(cfg, run_dir, name=f"eval-{bench}-{ctx.model_tag()}{_job_suffix()}")
    try:
        rows = evaluator.run()
        summary = summarize(rows, methods)
        title = (
            f"FlipSketch evaluation: benchmark {bench} ({_n(len(items), 'sketch')} x {_n(len(seeds), 'seed')}), "
            f"model {ctx.model_tag()}, {cfg.sampler.num_inference_steps} steps, {cfg.sampler.num_frames} frames; "
            f"CLIP backbone {scorer.backbone}{_job_label()}\n"
        )
        table = to_markdown(summary, title)
        if overlap:
            table += "\n" + "".join(f"> **Train/eval overlap:** {line}.\n" for line in overlap)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "results.md").write_text(table, encoding="utf-8")
        out = {
            "table": table,
            "summary": summary,
            "rows": rows,
            "counts": dict(evaluator.counts),
            "backbone": scorer.backbone,
            "overlap": overlap,
            "run_dir": str(run_dir),
            "samples_dir": str(evaluator.root),
            "results_md": str(run_dir / "results.md"),
            "results_csv": str(write_summary_csv(run_dir / "results.csv", summary)),
            "items_csv": str(write_items_csv(run_dir / "items.csv", rows)),
            "videos": [r["folder"] for r in rows],
            "metrics": {f"{s['method']}/{k[:-5]}": s[k] for s in summary for k in s if k.endswith("_mean")},
        }
        print(table)
        if wb is not None:
            wb.log(rows, summary)
        return out
    finally:
        if wb is not None:
            wb.finish()
        _set_threads(threads)


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


def _set_threads(n) -> int | None:
    """Set torch's CPU thread count (None: leave it); returns the previous count to restore."""
    if n in (None, ""):
        return None
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    return before


def _optimized_metric(cfg: DictConfig, out: dict) -> float | None:
    value = out["metrics"].get(str(cfg.get("optimized_metric") or ""))
    return None if value is None else float(value)


def _finish_wandb() -> None:
    from .evaluation.wandb_log import finish_wandb

    finish_wandb()


HELP = """flipsketch-eval: FlipSketch variants and baselines on a benchmark -> videos, metrics, tables.

Usage (Hydra overrides, key=value):
  flipsketch-eval experiment=tiny_table1                          # CPU, about a minute
  flipsketch-eval experiment=paper_table1 model.lora=DIR          # the paper's Table 1, one GPU
  flipsketch-eval -m experiment=tiny_ablation methods=[full] sampler.lambda_=0,0.5,1   # a sweep

Common settings (conf/eval.yaml):
  methods=[full,no_alignment,...] (names from variants= and baseline=)  seeds=[0,1,2]
  sampler.* (as flipsketch-animate; the model's default preset unless sampler= is given)
  benchmark.only=[cat,fish]  device=auto|cpu|cuda  dtype=auto  torch_threads=N  overwrite=false
  logger=wandb|none (WANDB_MODE=online|offline|disabled; offline when unset)
  optimized_metric=full/s2v optimized_mode=max (what a sweep optimises and how it names the best job)
Writes samples under logs/eval/samples/ (a rerun skips finished items) and results.md, results.csv,
items.csv in logs/eval/runs/<time>/; a multirun adds one results.md/results.csv over all jobs.
"""

main = hydra_cli(
    "eval",
    evaluate,
    result=_optimized_metric,
    on_exit=_finish_wandb,
    check=check,
    job_metrics=lambda cfg, out: out["metrics"],
    help_text=HELP,
    program="flipsketch-eval",
)


if __name__ == "__main__":
    main()
