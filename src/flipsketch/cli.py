"""Shared plumbing for the Hydra-style command lines: every CLI refuses bad input the same way.

* `compose_config` composes conf/<name>.yaml with the overrides; a malformed override, an unknown
  key or an unknown group option becomes one `UserError` line ("did you mean ..." for near misses,
  how to quote a prompt that Hydra's lexer cannot read).
* `cli_main` builds every console `main(argv)` (animate, train, eval, export, data_gen, app): the
  --help page, the overrides composed and the CLI's `check(cfg)` run *before* anything is written
  (before Hydra creates its run folder), a `UserError` as one `error:` line and exit code 2 (a
  task's error also removes the run folder it leaves behind), and the W&B run closed at the end.
"""

from __future__ import annotations

import difflib
import logging
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from .config import register_configs
from .errors import UserError, report_user_errors
from .threads import config_threads, use_threads
from .tracking import finish_wandb

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
MAX_PRECHECKED_JOBS = 64  # a multirun's first jobs are composed and checked up front


def conf_dir() -> str:
    if not CONF_DIR.is_dir():
        raise UserError(f"config folder not found: {CONF_DIR} (install flipsketch from a source checkout)")
    return str(CONF_DIR)


# ----------------------------------------------------------------------------- override parsing
def _bash_quoted(text: str) -> str:
    return '"' + re.sub(r'([\\"$`])', r"\\\1", text) + '"'


def _quoting_hint(override: str) -> str:
    key, _, value = override.partition("=")
    hydra_value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    hydra_form = f"{key}={hydra_value}"
    return (
        f"cannot read {override!r}: Hydra needs this value quoted; in bash type "
        f"{key}={_bash_quoted(hydra_value)} so that Hydra sees {hydra_form}"
    )


_UNQUOTED_OK = re.compile(r"^[A-Za-z0-9_\-+./\\:*?$%@&~ \t]*$")


def _parse_error_message(override: str, exc: Exception) -> str:
    key, eq, value = override.partition("=")
    if not eq:
        return f"cannot read {override!r}: an override is key=value (e.g. sampler.lambda_=0.3)"
    if not key.strip():
        return f"cannot read {override!r}: the key before '=' is missing"
    v = value.strip()
    looks_structured = v.startswith(("[", "{")) or bool(re.match(r"^\w+\(.*\)$", v))
    if value and not looks_structured and not _UNQUOTED_OK.match(value):
        return _quoting_hint(override)
    first = " ".join(str(exc).split("See https://")[0].split())
    return f"cannot read {override!r}: {first[:200]}"


def parse_overrides(overrides: list[str]):
    """Parse with Hydra's grammar; a bad override is one line saying which and how to fix it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = []
    for o in overrides:
        try:
            parsed += parser.parse_overrides([o])
        except HydraException as exc:
            raise UserError(_parse_error_message(o, exc)) from None
    return parsed


# ----------------------------------------------------------------------------- composition
def _groups() -> list[str]:
    return sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir()) if CONF_DIR.is_dir() else []


def config_keys(node, prefix: str = "") -> list[str]:
    """Every dotted key of a composed config (nested mappings included)."""
    from omegaconf import DictConfig

    keys = []
    if isinstance(node, DictConfig):
        for k in node.keys():
            name = f"{prefix}.{k}" if prefix else str(k)
            keys.append(name)
            try:
                child = node._get_node(k)
            except Exception:  # noqa: BLE001 - a key we cannot look into is still a key
                continue
            if isinstance(child, DictConfig):
                keys += config_keys(child, name)
    return keys


def did_you_mean(word: str, candidates) -> str:
    """'; did you mean X?' for a near-miss key (or '' when nothing is close): a misspelt last part
    (sampler.lamda_ -> sampler.lambda_), a misspelt parent (smapler.lambda_ -> sampler.lambda_),
    or a misspelt top-level key (modle -> model)."""
    parent, _, leaf = word.rpartition(".")
    split = [c.rpartition(".") for c in candidates if c.count(".") == word.count(".")]
    leaves = [c_leaf for c_parent, _, c_leaf in split if c_parent == parent]
    close = difflib.get_close_matches(leaf, leaves, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {parent + '.' if parent else ''}{close[0]}?"
    parents = [c_parent for c_parent, _, c_leaf in split if c_leaf == leaf and c_parent != parent]
    close = difflib.get_close_matches(parent, parents, n=1, cutoff=0.6) if parent else []
    return f"; did you mean {close[0]}.{leaf}?" if close else ""


def _raw_compose(config_name: str, overrides: list[str], return_hydra_config: bool = False):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
            return compose(
                config_name=config_name,
                overrides=list(overrides),
                return_hydra_config=return_hydra_config,
            )
    finally:
        GlobalHydra.instance().clear()


def _known_keys(config_name: str, overrides: list[str], bad: str) -> list[str]:
    """Keys of the config composed without the offending override (or with none at all)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    rest = [o for o in overrides if o.lstrip("+~").partition("=")[0] != bad]
    for attempt in (rest, []):
        try:
            cfg = _raw_compose(config_name, attempt)
        except (HydraException, OmegaConfBaseException, ValueError):
            continue
        return [k for k in config_keys(cfg) if not k.startswith("hydra")] + _groups()
    return _groups()


def explain_compose_error(config_name: str, overrides: list[str], exc: Exception) -> str:
    text = str(exc)
    m = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if m:
        group, option = m.group(1), m.group(2)
        opts = re.findall(r"^\t(\S+)$", text.split("Config search path")[0], flags=re.M)
        if not opts and (CONF_DIR / group).is_dir():
            opts = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        choose = f"; choose one of {', '.join(opts)}" if opts else ""
        plugin = ""
        if group.startswith("hydra/") and option.split("_")[0] in ("optuna", "submitit"):
            plugin = f" ({option.split('_')[0]} is a plugin: pip install -e '.[sweep]')"
        return f"bad configuration: unknown {group}={option}{plugin}{choose}{did_you_mean(option, opts)}"
    m = re.search(r"Could not (?:override|append to) '([^']+)'", text) or re.search(
        r"Could not delete from config\. '([^']+)' does not exist", text
    )
    if m:
        key = m.group(1)
        value = next((o.partition("=")[2] for o in overrides if o.lstrip("+~").partition("=")[0] == key), "")
        groups = [g for g in _groups() if (CONF_DIR / g / f"{value}.yaml").is_file()]
        hint = did_you_mean(key, groups) or did_you_mean(key, _known_keys(config_name, overrides, key))
        return f"bad configuration: unknown setting {key!r}{hint}"
    m = re.search(r"Ambiguous value for argument '([^']+)'", text)
    if m:
        key, _, value = m.group(1).partition("=")
        return (
            f"bad configuration: {m.group(1)!r} has a comma, which makes a list or a sweep; "
            f"for text write {key}='{value}' (in bash: \"{key}='{value}'\"), for a list {key}=[...]"
        )
    msg = " ".join(text.split("See https://")[0].split())
    if isinstance(exc.__cause__, Exception) and str(exc.__cause__):
        msg += " (" + " ".join(str(exc.__cause__).split())[:150] + ")"
    return f"bad configuration: {msg[:300]}"


def compose_config(config_name: str, overrides: list[str], return_hydra_config: bool = False):
    """Compose conf/<config_name>.yaml with Hydra overrides; bad overrides become one UserError line."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides)
    parse_overrides(overrides)
    try:
        return _raw_compose(config_name, overrides, return_hydra_config)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise UserError(explain_compose_error(config_name, overrides, exc)) from None


def instantiate_checked(node, **kwargs):
    """`hydra.utils.instantiate` that lets a UserError raised inside come out as itself
    (Hydra wraps every error in an InstantiationException carrying a stack trace)."""
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, UserError):
                raise cause from None
            cause = cause.__cause__ or cause.__context__
        raise


# ----------------------------------------------------------------------------- per-model sampler
def _primary_default(config_name: str, group: str) -> str | None:
    """The option conf/<config_name>.yaml's defaults list picks for `group` (e.g. sampler: flipsketch)."""
    from omegaconf import OmegaConf

    path = CONF_DIR / f"{config_name}.yaml"
    if not path.is_file():
        return None
    for entry in OmegaConf.load(path).get("defaults") or []:
        if OmegaConf.is_dict(entry) and group in entry:
            return str(entry[group])
    return None


def _picks_group(overrides: list[str], group: str) -> bool:
    return any(o.lstrip("+~").partition("=")[0].split("@")[0] == group for o in overrides)


def with_model_sampler(config_name: str, argv: list[str]) -> list[str]:
    """`argv` plus `sampler=<model.default_sampler>` when the model config names a default sampler
    preset and neither the command line nor an experiment picked one (the primary config's
    `sampler:` default is still in place). E.g. model=tiny_pretrained runs sampler=tiny_world, the
    paper's models sampler=flipsketch. A sweep over models keeps the primary default unless every
    job's model agrees."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    shown = ("--cfg", "-c", "--package", "-p")  # --cfg job: show the config this run would use
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        skip = a in shown
        if a not in shown and a != "--resolve":
            rest.append(a)
    flags, overrides = _split_argv(rest)
    if _picks_group(overrides, "sampler") or any(f not in ("-m", "--multirun") for f in flags):
        return list(argv)
    primary = _primary_default(config_name, "sampler")
    if primary is None:  # no sampler group in this config (train, export, ...)
        return list(argv)
    multirun = any(f in ("-m", "--multirun") for f in flags)
    try:
        jobs = (_sweep_jobs(overrides) if multirun else [overrides]) or [[]]
    except UserError:
        return list(argv)  # the precheck reports the bad override
    wanted = set()
    for job in jobs[:MAX_PRECHECKED_JOBS]:
        try:
            cfg = _raw_compose(config_name, job, return_hydra_config=True)
            choice = str(cfg.hydra.runtime.choices.get("sampler"))
            default = cfg.model.get("default_sampler") if "model" in cfg else None
        except (HydraException, OmegaConfBaseException, ValueError):
            return list(argv)  # the precheck reports it
        wanted.add(default if default and choice == primary and default != primary else None)
    if len(wanted) != 1 or None in wanted:
        return list(argv)
    return [*argv, f"sampler={wanted.pop()}"]


# ----------------------------------------------------------------------------- run folders
def _nearest_existing(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _close_log_files_under(folder: Path) -> None:
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
    _close_log_files_under(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    parent = run_dir.parent
    while parent != anchor and parent.is_relative_to(anchor) and parent.is_dir():
        left = [p.name for p in parent.iterdir()]
        if left and left != ["multirun.yaml"]:
            break
        shutil.rmtree(parent, ignore_errors=True)
        parent = parent.parent


# ----------------------------------------------------------------------------- console mains
def _split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    flags = [a for a in argv if a.startswith("-")]
    return flags, [a for a in argv if not a.startswith("-")]


def _sweep_jobs(overrides: list[str]) -> list[list[str]] | None:
    """The override lists of a command-line multirun (None: a sweep only Hydra's sweeper can expand)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.errors import HydraException

    parsed = parse_overrides(overrides)
    try:
        batches = BasicSweeper.split_arguments(parsed, None)
    except HydraException:
        return None
    return batches[0] if batches else [[]]


def precheck(config_name: str, argv: list[str], check: Callable | None) -> Path | None:
    """Compose and check the run (every job of a command-line sweep, up to a cap) before Hydra
    starts. Returns the nearest existing folder above the run folder Hydra will create (None when
    Hydra's own flags such as --help or --cfg are given: Hydra handles those)."""
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    flags, overrides = _split_argv(argv)
    unknown = [f for f in flags if f.split("=", 1)[0] not in HYDRA_FLAGS]
    if unknown:
        raise UserError(_unknown_option(unknown[0], "sampler.lambda_=0.3"))
    multirun = any(f in ("-m", "--multirun") for f in flags)
    if any(f not in ("-m", "--multirun") for f in flags):
        return None
    jobs = _sweep_jobs(overrides) if multirun else [overrides]
    if jobs is None:  # e.g. an optuna search space: compose the plain overrides only
        jobs = [[o for o in overrides if "," not in o.partition("=")[2]]]
        check = None
    anchor = None
    for job in jobs[:MAX_PRECHECKED_JOBS]:
        cfg = compose_config(config_name, job, return_hydra_config=True)
        if anchor is None:
            try:
                run_dir = Path(str(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir))
            except OmegaConfBaseException as exc:
                raise UserError(f"bad configuration: the run folder: {_first_line(exc)}") from None
            from .checks import check_out_dir

            check_out_dir(run_dir, "the run folder (set by paths.log_dir or hydra.run.dir)")
            anchor = _nearest_existing(run_dir)
        if check is not None:
            with open_dict(cfg):
                cfg.pop("hydra", None)  # the task sees the config without it, as inside the run
            run_check(check, cfg)
    return anchor


def _first_line(exc: BaseException) -> str:
    return " ".join((str(exc).strip().splitlines() or [type(exc).__name__])[0].split())[:200]


def run_check(check: Callable, cfg) -> None:
    """`check(cfg)`, with a config value that cannot be resolved (e.g. `prompt=${nope}`) as one line."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        check(cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        where = f"{key}: " if key else ""
        raise UserError(f"bad configuration: {where}{_first_line(exc)}") from None


# Hydra's own command-line flags (hydra/_internal/utils.py get_args_parser); anything else is a typo.
HYDRA_FLAGS = {
    "-h",
    "--help",
    "--hydra-help",
    "--version",
    "-c",
    "--cfg",
    "--resolve",
    "-p",
    "--package",
    "--run",
    "-r",
    "-m",
    "--multirun",
    "-sc",
    "--shell-completion",
    "-cp",
    "--config-path",
    "-cn",
    "--config-name",
    "-cd",
    "--config-dir",
    "--info",
    "-i",
    "--experimental-rerun",
}


def _experiment_groups(path: Path) -> set[str]:
    """The config groups an experiment overrides (it applies to a CLI that has all of them)."""
    from omegaconf import OmegaConf

    out = set()
    for entry in OmegaConf.load(path).get("defaults") or []:
        if OmegaConf.is_dict(entry):
            for key in entry:
                key = str(key)
                if key.startswith("override /"):
                    out.add(key.removeprefix("override /").split("/")[0])
    return out


def help_page(config_name: str, text: str, program: str) -> str:
    """A short --help: the CLI's own text, then its config groups and their options (read from
    conf/, so it never goes stale), then where the full config is."""
    from omegaconf import OmegaConf

    lines = [text.strip(), ""]
    path = CONF_DIR / f"{config_name}.yaml"
    groups = []
    if path.is_file():
        for entry in OmegaConf.load(path).get("defaults") or []:
            if OmegaConf.is_dict(entry):
                for group, choice in entry.items():
                    group = str(group).removeprefix("override ")
                    if (CONF_DIR / group).is_dir() and group not in ("hydra", "paths"):
                        groups.append((group, choice))
    if groups:
        names = {g for g, _ in groups}
        lines.append("Config groups (group=default, and the other options):")
        for group, choice in groups:
            opts = [
                p.stem
                for p in sorted((CONF_DIR / group).glob("*.yaml"))
                if group != "experiment" or _experiment_groups(p) <= names
            ]
            default = ", ".join(map(str, choice)) if OmegaConf.is_list(choice) else str(choice)
            default = "(none)" if default == "None" else default
            rest = [o for o in opts if o not in str(default).split(", ")]
            lines.append(f"  {group}={default}" + (f"   (also: {' | '.join(rest)})" if rest else ""))
        lines.append("")
    lines += [
        f"Every setting: {program} --cfg job [overrides]   (the composed config, nothing run)",
        f"Hydra's own flags: {program} --hydra-help   Configs: {CONF_DIR}/{config_name}.yaml",
        "Bad input ends with one `error:` line on stderr and exit code 2, with nothing written.",
    ]
    return "\n".join(lines)


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
):
    """The one way a FlipSketch command line is built: a console `main(argv=None) -> int`.

    Every CLI gets the same handling: `help_words` print the help page and exit 0 (`help_text`,
    followed with `help_groups` by the config groups read from conf/ and where the full config is);
    an option that is not a setting is refused; the overrides get the model's default sampler
    preset (`with_model_sampler`), then `prepare_argv(argv)` (e.g. a resumed run's folder); the
    config is composed and `check(cfg)` runs before anything is written; a `UserError` anywhere is
    one `error:` line on stderr and exit code 2; `on_exit()` always runs after the task (by default
    `tracking.finish_wandb`: no W&B run is left open, e.g. for the next job of a sweep).

    `hydra_run=True` (train, eval, export, data_gen): the task runs inside `@hydra.main` as
    `task(cfg)`, in Hydra's run folder (multiruns, sweepers, provenance.json; a task's `UserError`
    removes the run folder it leaves behind); `result(cfg, out)` is the value a sweeper optimises
    and `job_metrics(cfg, out)` what a multirun job records for the combined table.
    `hydra_run=False` (animate: its run folder is `out=`): the config is composed here and the task
    runs as `task(cfg, argv)`. `config_name=None` (the app, which composes per request): nothing is
    composed and the task runs as `task(argv)`.
    """
    hydra_main = (
        _hydra_entry(config_name, task, check, result, job_metrics, on_exit)
        if hydra_run and config_name
        else None
    )

    @report_user_errors
    def main(argv: list[str] | None = None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        if help_text is not None and any(a in help_words for a in argv):
            text = help_page(config_name, help_text, program or f"flipsketch-{config_name}")
            print(text if help_groups and config_name else help_text)
            return 0
        if hydra_main is None:  # no Hydra flags here: every option is a typo
            flags = [a for a in argv if a.startswith("-")]
            if flags:
                raise UserError(_unknown_option(flags[0], flag_example))
        from .quiet import quiet_third_party

        quiet_third_party()
        if config_name is None:
            return _run_direct(lambda: task(argv), on_exit)
        argv = with_model_sampler(config_name, argv)
        if prepare_argv is not None:
            argv = prepare_argv(argv)
        if hydra_main is not None:
            return hydra_main(argv)
        cfg = compose_config(config_name, argv)
        if check is not None:
            run_check(check, cfg)  # every check, before any model is built
        use_threads(config_threads(cfg))
        return _run_direct(lambda: task(cfg, argv), on_exit)

    return main


def _unknown_option(flag: str, example: str) -> str:
    return f"unknown option {flag!r}: settings are key=value (e.g. {example}); --help lists them"


def _run_direct(run: Callable, on_exit: Callable | None) -> int:
    try:
        run()
    finally:
        if on_exit is not None:
            on_exit()
    return 0


def _hydra_entry(config_name, task, check, result, job_metrics, on_exit) -> Callable[[list[str]], int]:
    """`run(argv)`: precheck the overrides, then `task(cfg)` under `@hydra.main` (see `cli_main`)."""
    import hydra

    register_configs()
    errors: list[UserError] = []
    failed_dirs: list[Path] = []

    @hydra.main(config_path=conf_dir(), config_name=config_name, version_base="1.3")
    def _hydra_main(cfg):
        try:
            if check is not None:
                run_check(check, cfg)
            use_threads(config_threads(cfg))
            _record_start(config_name)
            out = task(cfg)
            value = result(cfg, out) if result is not None else None
            if job_metrics is not None:
                _record_job(cfg, value, job_metrics(cfg, out))
            return value
        except UserError as exc:
            errors.append(exc)
            failed_dirs.append(_current_run_dir())
            return None
        finally:
            if on_exit is not None:
                on_exit()

    def run(argv: list[str]) -> int:
        errors.clear()
        failed_dirs.clear()
        anchor = precheck(config_name, argv, check)
        saved = sys.argv
        sys.argv = [saved[0] if saved else config_name, *argv]
        try:
            _hydra_main()
        finally:
            sys.argv = saved
        for d in failed_dirs:
            if d is not None:
                remove_run_dir(d, anchor)
        if errors:
            raise errors[0]
        return 0

    return run


def _record_start(config_name: str) -> None:
    """<run>/provenance.json: one entry per start of this run folder (a resumed run appends): git
    commit, library versions, UTC time, the command line. Hydra's .hydra/ holds the config."""
    import json

    run_dir = _current_run_dir()
    if run_dir is None:
        return
    from .provenance import provenance

    path = run_dir / "provenance.json"
    try:
        starts = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    except (OSError, ValueError):
        starts = []
    starts = starts if isinstance(starts, list) else []
    starts.append(provenance([f"flipsketch-{config_name}", *sys.argv[1:]]))
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(starts, indent=2), encoding="utf-8")


def _record_job(cfg, value, metrics: dict) -> None:
    """Inside a multirun: <job>/job_result.json, which the sweep's combined table reads."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return
        overrides = list(hc.overrides.task)
        run_dir = Path(hc.runtime.output_dir)
    except (ImportError, ValueError):
        return
    from .sweeps import write_job_result

    write_job_result(run_dir, overrides, cfg.get("optimized_metric"), value, metrics)


def _current_run_dir() -> Path | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except Exception:  # noqa: BLE001 - outside a Hydra run there is no run folder
        return None
