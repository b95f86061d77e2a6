"""`cli_main`: the one way a FlipSketch command line is built (animate, train, eval, export,
data_gen, app), and the `@hydra.main` entry the Hydra-run ones start their task in."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ..config import register_configs
from ..errors import UserError, as_disk_full, report_user_errors
from ..threads import config_threads, use_threads
from ..tracking import finish_wandb
from . import hydra_adapter as hy
from .compose import (
    compose_config,
    composition_cache,
    conf_dir,
    literal_text_overrides,
    with_config_dirs,
    with_model_sampler,
)
from .explain import unknown_option
from .help import defaults_help, help_page
from .runs import (
    Prechecked,
    config_fingerprint,
    precheck,
    record_job,
    record_start,
    remove_run_dir,
    run_check,
)


def cli_main(
    config_name: str | None,
    task: Callable,
    *,
    program: str | None = None,
    help_text: str | None = None,
    help_groups: bool = True,
    help_words: tuple[str, ...] = ("-h", "--help"),
    check: Callable | None = None,
    hydra_run: bool = True,
    result: Callable | None = None,
    job_metrics: Callable | None = None,
    prepare_argv: Callable | None = None,
    on_exit: Callable | None = finish_wandb,
    flag_example: str = "sampler.lambda_=0.3",
    help_defaults: str | None = None,
):
    """The one way a FlipSketch command line is built: a console `main(argv=None) -> int`.

    Every CLI gets the same handling: `help_words` print the help page and exit 0 (`help_text`,
    followed with `help_groups` by the config groups read from conf/ and where the full config is);
    an option that is not a setting is refused; the overrides get the model's default sampler
    preset (`with_model_sampler`), then `prepare_argv(argv)` (e.g. a resumed run's folder); the
    config is composed and `check(cfg)` runs once, before anything is written; a `UserError`
    anywhere is one `error:` line on stderr and exit code 2; `on_exit()` always runs after the task
    (by default `tracking.finish_wandb`: no W&B run is left open, e.g. for the next job of a sweep).

    `help_defaults`: the config whose real defaults (the model's sampler preset applied) the help
    page ends with (default `config_name`; the app names "animate"), see `defaults_help`.

    `hydra_run=True` (train, eval, export, data_gen): the task runs inside `@hydra.main` as
    `task(cfg)`, in Hydra's run folder (multiruns, sweepers, provenance.json; a task's `UserError`
    removes the run folder it leaves behind); `result(cfg, out)` is the value a sweeper optimises
    and `job_metrics(cfg, out)` what a multirun job records for the combined table.
    `hydra_run=False` (animate: its run folder is `out=`): the config is composed here and the task
    runs as `task(cfg, argv)`. `config_name=None` (the app, which composes per request): nothing is
    composed and the task runs as `task(argv)`.
    """
    entry = (
        HydraEntry(config_name, task, check, result, job_metrics, on_exit)
        if hydra_run and config_name
        else None
    )

    @report_user_errors
    def main(argv: list[str] | None = None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        if help_text is not None and any(a in help_words for a in argv):
            text = help_page(config_name, help_text, program or f"flipsketch-{config_name}")
            print(text if help_groups and config_name else help_text)
            shown = help_defaults or config_name  # the defaults the chosen (or default) model runs
            extra = defaults_help(shown, [a for a in argv if a not in help_words]) if shown else ""
            if extra:
                print("\n" + extra.replace("{program}", program or f"flipsketch-{config_name}"))
            return 0
        if config_name is not None:  # --config-dir DIR: the user's configs join Hydra's search path
            argv = with_config_dirs(argv)  # (the app composes per request: a flag there is a typo)
        if entry is None:  # no Hydra flags here: every option is a typo
            flags = [a for a in argv if a.startswith("-")]
            if flags:
                raise UserError(unknown_option(flags[0], flag_example))
        from ..quiet import quiet_third_party

        quiet_third_party()
        argv = literal_text_overrides(argv)  # a prompt is text, never an interpolation
        if config_name is None:
            return run_direct(lambda: task(argv), on_exit)
        with composition_cache():  # each job composed once before the run
            argv = with_model_sampler(config_name, argv)
            if prepare_argv is not None:
                argv = prepare_argv(argv)
            if entry is not None:
                found = precheck(config_name, argv, check)
            else:
                cfg = compose_config(config_name, argv)
                if check is not None:
                    run_check(check, cfg)  # every check, before any model is built
        if entry is not None:
            return entry.run(argv, found)
        use_threads(config_threads(cfg))
        return run_direct(lambda: task(cfg, argv), on_exit)

    return main


def run_direct(run: Callable, on_exit: Callable | None) -> int:
    """`run()` outside Hydra, `on_exit()` after it whatever happens; 0."""
    try:
        run()
    finally:
        if on_exit is not None:
            on_exit()
    return 0


class HydraEntry:
    """`run(argv, prechecked)`: `task(cfg)` under `@hydra.main` for a prechecked command line; the
    check runs inside only for a job the precheck did not check (a sweeper's trial, a job past
    MAX_PRECHECKED_JOBS). A job's `UserError` (or a full disk) removes the folder it leaves."""

    def __init__(self, config_name, task, check, result, job_metrics, on_exit):
        register_configs()
        self.config_name, self.task, self.check = config_name, task, check
        self.result, self.job_metrics, self.on_exit = result, job_metrics, on_exit
        self.errors: list[UserError] = []
        self.failed_dirs: list[Path | None] = []
        self.checked: set[str] = set()
        self.hydra_main = hy.hydra_runner(conf_dir(), config_name, self.job)

    def job(self, cfg):
        try:
            if self.check is not None and config_fingerprint(cfg) not in self.checked:
                run_check(self.check, cfg)
            use_threads(config_threads(cfg))
            record_start(self.config_name)
            out = self.task(cfg)
            value = self.result(cfg, out) if self.result is not None else None
            if self.job_metrics is not None:
                record_job(cfg, value, self.job_metrics(cfg, out))
            return value
        except UserError as exc:
            self.errors.append(exc)
            self.failed_dirs.append(hy.current_run_dir())
            return None
        except Exception as exc:
            full = as_disk_full(exc)
            if full is None:
                raise
            self.errors.append(full)  # one line; a run folder holding checkpoints is kept (resume it)
            run_dir = hy.current_run_dir()
            if run_dir is None or not any((run_dir / "checkpoints").glob("*.ckpt")):
                self.failed_dirs.append(run_dir)
            return None
        finally:
            if self.on_exit is not None:
                self.on_exit()

    def run(self, argv: list[str], found: Prechecked) -> int:
        self.errors.clear()
        self.failed_dirs.clear()
        self.checked = found.checked
        self.hydra_main(argv)
        for d in self.failed_dirs:
            if d is not None:
                remove_run_dir(d, found.anchor)
        if self.errors:
            raise self.errors[0]
        return 0
