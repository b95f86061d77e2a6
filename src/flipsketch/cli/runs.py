"""Run folders: the precheck that composes and checks a run before Hydra creates its folder, the
removal of a refused run's folder, and the records a run leaves (provenance.json, job_result.json)."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from . import hydra_adapter as hy
from .compose import MAX_PRECHECKED_JOBS, compose_config, sweep_jobs
from .explain import first_line, unknown_option


def nearest_existing(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def close_log_files_under(folder: Path) -> None:
    """Close (and detach) every logging handler writing a file under `folder`."""
    folder = folder.absolute()
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        if not isinstance(logger, logging.Logger):
            continue
        for h in list(logger.handlers):
            name = getattr(h, "baseFilename", None)
            if name and Path(name).absolute().is_relative_to(folder):
                logger.removeHandler(h)
                h.close()


def remove_run_dir(run_dir: Path, anchor: Path | None) -> None:
    """Remove a refused run's folder (and the empty parents it created below `anchor`, the
    nearest folder that existed before the run). A folder that existed before is left alone."""
    run_dir = Path(run_dir).absolute()
    if anchor is None or run_dir == anchor or not run_dir.is_relative_to(anchor):
        return
    close_log_files_under(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    parent = run_dir.parent
    while parent != anchor and parent.is_relative_to(anchor) and parent.is_dir():
        left = [p.name for p in parent.iterdir()]
        if left and left != ["multirun.yaml"]:
            break
        shutil.rmtree(parent, ignore_errors=True)
        parent = parent.parent


# ----------------------------------------------------------------------------- the check
def run_check(check: Callable, cfg) -> None:
    """`check(cfg)`, with a config value that cannot be resolved (e.g. `prompt=${nope}`) as one line."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        check(cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        where = f"{key}: " if key else ""
        raise UserError(f"bad configuration: {where}{first_line(exc)}") from None


def config_fingerprint(cfg) -> str:
    """A job's config as written (interpolations unresolved, no hydra node): a job whose config
    has the fingerprint of one the precheck checked is not checked again inside the run."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg, resolve=False)


@dataclass
class Prechecked:
    """What the precheck found: `anchor`, the nearest folder above the run folder Hydra will create
    that exists now (None when Hydra only prints a page); `checked`, the fingerprints of the job
    configs whose check passed, each seen with its real run folder as ${paths.output_dir}."""

    anchor: Path | None = None
    checked: set[str] = field(default_factory=set)


def _check_flags(config_name: str, flags: list[tuple[str, str | None]]) -> None:
    """Refuse the Hydra flags that would run something else than conf/<config_name>.yaml (or load a
    pickle). --config-dir never gets here: `with_config_dirs` made it a hydra.searchpath override."""
    for name, value in flags:
        if name not in hy.HYDRA_FLAGS:
            raise UserError(unknown_option(name, "sampler.lambda_=0.3"))
        if name in ("-cp", "--config-path", "-cn", "--config-name"):
            raise UserError(
                f"{name} is not supported: flipsketch-{config_name} always composes conf/{config_name}.yaml; "
                "pick options with key=value or experiment=NAME (--config-dir DIR adds a folder of your own configs)"
            )
        if name == "--experimental-rerun":
            raise UserError(
                "--experimental-rerun is not supported (it loads a pickled config, which can run code); "
                "rerun with the overrides in <run>/.hydra/overrides.yaml"
            )
        if name in ("-c", "--cfg") and value not in hy.CFG_CHOICES:
            raise UserError(f"{name} takes job, hydra or all, got {value!r}")


def _check_job(check: Callable, cfg, multirun: bool, num: int) -> set[str]:
    """`check` on one composed job, `${hydra:runtime.output_dir}` being the folder Hydra will give
    the job (as inside the run); the job's fingerprint, or nothing when that folder is unknown."""
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    try:
        out_dir = hy.job_output_dir(cfg, multirun, num)
    except OmegaConfBaseException:
        out_dir = None  # the check runs again inside the run, where Hydra knows it
    with hy.job_hydra_config(cfg, out_dir) if out_dir is not None else nullcontext():
        with open_dict(cfg):
            cfg.pop("hydra", None)  # the task sees the config without it, as inside the run
        run_check(check, cfg)
    return {config_fingerprint(cfg)} if out_dir is not None else set()


def precheck(config_name: str, argv: list[str], check: Callable | None) -> Prechecked:
    """Compose and check the run (every job of a command-line sweep, up to a cap) before Hydra
    starts: each job is composed and checked once here."""
    from omegaconf.errors import OmegaConfBaseException

    from ..checks import check_out_dir, check_own_folder

    flags, overrides = hy.split_flags(argv)
    _check_flags(config_name, flags)
    names = {n for n, _ in flags}
    if names & hy.PASS_FLAGS:
        return Prechecked()  # Hydra prints its own page; nothing is composed or written
    multirun = bool(names & hy.MULTIRUN_FLAGS)
    jobs = sweep_jobs(overrides) if multirun else [overrides]
    plain = [o for o in overrides if "," not in o.partition("=")[2]]
    if names & hy.SHOW_FLAGS:  # --cfg job, --info: the config is printed, nothing written; still one line
        for job in (jobs or [plain])[:MAX_PRECHECKED_JOBS]:
            compose_config(config_name, job, return_hydra_config=True)
        return Prechecked()
    if jobs is None:  # e.g. an optuna search space: compose the plain overrides only
        jobs, check = [plain], None
    found = Prechecked()
    for num, job in enumerate(jobs[:MAX_PRECHECKED_JOBS]):
        cfg = compose_config(config_name, job, return_hydra_config=True)
        if found.anchor is None:
            try:
                run_dir = Path(str(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir))
            except OmegaConfBaseException as exc:
                raise UserError(f"bad configuration: the run folder: {first_line(exc)}") from None
            check_out_dir(run_dir, "the run folder (set by paths.log_dir or hydra.run.dir)")
            check_own_folder(run_dir, "the run folder", legacy=(".hydra", "multirun.yaml"))
            found.anchor = nearest_existing(run_dir)
        if check is not None:
            found.checked |= _check_job(check, cfg, multirun, num)
    return found


# ----------------------------------------------------------------------------- records
def record_start(config_name: str) -> None:
    """<run>/provenance.json: one entry per start of this run folder (a resumed run appends): git
    commit, library versions, UTC time, the command line. Hydra's .hydra/ holds the config."""
    import json

    run_dir = hy.current_run_dir()
    if run_dir is None:
        return
    from ..checks import mark_own_folder
    from ..provenance import provenance

    path = run_dir / "provenance.json"
    try:
        starts = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    except (OSError, ValueError):
        starts = []
    starts = starts if isinstance(starts, list) else []
    starts.append(provenance([f"flipsketch-{config_name}", *sys.argv[1:]]))
    mark_own_folder(run_dir, f"flipsketch-{config_name}")  # ours: a resumed run may write into it
    path.write_text(json.dumps(starts, indent=2), encoding="utf-8")


def record_job(cfg, value, metrics) -> None:
    """Inside a multirun: <job>/job_result.json, which the sweep's combined table reads.
    `metrics`: {name: number}, or ({name: number}, {name: what scored it}, scoring policy text[,
    {units, intervals, stats}])."""
    labels = scoring = extra = None
    if isinstance(metrics, tuple):
        metrics, labels, scoring, *rest = metrics
        extra = rest[0] if rest else None
    job = hy.multirun_job()
    if job is None:
        return
    overrides, run_dir = job
    from ..sweeps import write_job_result

    write_job_result(run_dir, overrides, cfg.get("optimized_metric"), value, metrics, labels, scoring, extra)
