"""Running an evaluation from Python (the demo, notebooks): compose conf/eval.yaml and call `evaluation.task.evaluate`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from omegaconf import open_dict


def compose_eval(overrides: list[str] | tuple[str, ...] = ()):
    """The eval config with `overrides` (and, as on the command line, the model's default sampler
    preset when no sampler is picked); outside a Hydra run the run folder is made here
    (logs/eval/runs/<time>, or `paths.output_dir=DIR` when given)."""
    from ..cli import compose_config, with_model_sampler

    overrides = with_model_sampler("eval", list(overrides))  # the model's default sampler preset
    cfg = compose_config("eval", overrides)
    if not any(o.lstrip("+").startswith("paths.output_dir=") for o in overrides):
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
        with open_dict(cfg):
            cfg.paths.output_dir = str(Path(str(cfg.paths.log_dir)) / str(cfg.task_name) / "runs" / stamp)
    return cfg


def run_eval(overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Compose and run one evaluation. Returns `evaluate`'s dict: `summary` (one row per method:
    label, n, <metric>_mean/_std), `rows` (per item and seed), `table` (Markdown), `counts`, and the
    paths `run_dir`, `samples_dir`, `results_md`, `results_csv`, `items_csv`, `videos`."""
    from ..tracking import finish_wandb
    from .task import evaluate

    try:
        return evaluate(compose_eval(overrides))
    finally:
        finish_wandb()
