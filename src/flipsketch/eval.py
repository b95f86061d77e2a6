"""flipsketch-eval: FlipSketch variants and baselines on a benchmark -> videos, metrics, tables, W&B.

flipsketch-eval experiment=tiny_table1                       # CPU, about a minute
flipsketch-eval experiment=paper_table1 model.lora=DIR       # the paper's Table 1, one GPU
flipsketch-eval experiment=paper_ablation model.lora=DIR     # the ablation rows
flipsketch-eval -m experiment=tiny_ablation methods=[full] sampler.lambda_=0,0.25,0.5,0.75,1   # a sweep

Writes <samples_dir>/<benchmark>/<model>/<method>-<hash>/<item>/seed<S>/ (GIF, MP4, PNG frames of the
method's raw output, meta.json, metrics.json; a rerun skips finished items) and results.md /
results.csv / items.csv / contact_sheets/<item>.png in the run folder (logs/eval/runs/<time>/), the
table printed at the end. Every method is scored under one policy (metrics.postprocess, .frames,
.include_frame0: conf/metrics/), named in the table header. Bad input: one line, exit code 2.
"""

from __future__ import annotations

from omegaconf import DictConfig

from .cli import cli_main
from .evaluation.task import check, evaluate

# The task lives in flipsketch.evaluation.task; imported here for the command line and the old
# import path (`from flipsketch.eval import evaluate`).
__all__ = ["check", "evaluate", "main"]


def scoring_text(out: dict) -> str:
    from .metrics import ScoringPolicy

    return ScoringPolicy(**out["policy"]).describe()


def metric_labels(out: dict) -> dict[str, str]:
    """What scored each metric of a multirun job ("full/s2v" -> "CLIP <backbone>; binarize 1x, 10
    frames, frame 0 out"), for the sweep's combined table (as the per-job results.md names them)."""
    p = out["policy"]
    post = str(p.get("postprocess"))
    if post == "binarize":
        post += f" {p.get('binarize_upscale', 1)}x"
    frames = "own frames" if p.get("frames") is None else f"{p['frames']} frames"
    policy = f"{post}, {frames}, frame 0 {'in' if p.get('include_frame0') else 'out'}"
    by = {"s2v": f"CLIP {out['backbone']}; ", "t2v": f"{out['t2v_scorer']}; "}
    labels = {}
    for key in out["metrics"]:
        metric = key.rsplit("/", 1)[-1]
        if metric != "seconds":
            labels[key] = by.get(metric, "") + policy
    return labels


def job_metrics(cfg: DictConfig, out: dict) -> tuple[dict, dict, str, dict]:
    """A multirun job's metrics, their labels, the scoring policy and the per-unit values and
    intervals the sweep compares jobs by; a shard worker that does not gather has no table (the
    gathering worker records it), so it records nothing."""
    if "policy" not in out:
        return {}, {}, "", {}
    extra = {k: out[k] for k in ("units", "intervals", "stats") if k in out}
    return out["metrics"], metric_labels(out), scoring_text(out), extra


def _optimized_metric(cfg: DictConfig, out: dict) -> float | None:
    value = out["metrics"].get(str(cfg.get("optimized_metric") or ""))
    return None if value is None else float(value)


HELP = """flipsketch-eval: FlipSketch variants and baselines on a benchmark -> videos, metrics, tables.

Usage (Hydra overrides, key=value):
  flipsketch-eval experiment=tiny_table1                          # CPU, about a minute
  flipsketch-eval experiment=paper_table1 model.lora=DIR          # the paper's Table 1, one GPU
  flipsketch-eval -m experiment=tiny_ablation methods=[full] sampler.lambda_=0,0.5,1   # a sweep

Common settings (conf/eval.yaml):
  methods=[full,no_alignment,...] (names from variants= and baseline=)  seeds=[0,1,2]
  sampler.* (as flipsketch-animate; the model's default preset unless sampler= is given)
  benchmark.only=[cat,fish]  device=auto|cpu|cuda  dtype=auto  threads=auto|N  overwrite=false
  metrics.t2v=xclip|clip  metrics.postprocess=binarize|grey  metrics.frames=N  metrics.include_frame0=false
    (one scoring policy for every method, written in the table header)
  logger=wandb|none (WANDB_MODE=online|offline|disabled; offline when unset)
  optimized_metric=full/s2v optimized_mode=max (what a sweep optimises and how it names the best job)
Writes samples under logs/eval/samples/ (a rerun skips finished items) and results.md, results.csv,
items.csv, contact_sheets/<item>.png in logs/eval/runs/<time>/; a multirun adds one results.md /
results.csv over all jobs (and tradeoff.png when it sweeps one sampler knob).
"""

main = cli_main(
    "eval",
    evaluate,
    program="flipsketch-eval",
    help_text=HELP,
    check=check,
    result=_optimized_metric,
    job_metrics=job_metrics,
)


if __name__ == "__main__":
    main()
