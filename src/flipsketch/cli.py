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
from .errors import UserError, as_disk_full, report_user_errors
from .resources import CONF_DIR
from .threads import config_threads, use_threads
from .tracking import finish_wandb

MAX_PRECHECKED_JOBS = 64  # a multirun's first jobs are composed and checked up front


def conf_dir() -> str:
    if not CONF_DIR.is_dir():
        raise UserError(
            f"config folder not found: {CONF_DIR} (reinstall flipsketch: its wheel carries conf/)"
        )
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


# ----------------------------------------------------------------------------- user text
# Settings that hold user text: a prompt is data, never an OmegaConf interpolation.
TEXT_KEYS = ("prompt", "prompts", "negative_prompt")


def _literal_value(value, text: bool):
    """A parsed override value with its user text (all strings when `text`, else the strings under
    a TEXT_KEYS key of a mapping, e.g. benchmark.items=[{prompt: ...}]) quoted and escaped."""
    from hydra.core.override_parser.types import Quote, QuotedString

    from .checks import literal_text

    if isinstance(value, QuotedString | str):
        raw = value.text if isinstance(value, QuotedString) else value
        return QuotedString(text=literal_text(raw), quote=Quote.single) if text and "${" in raw else value
    if isinstance(value, list):
        return [_literal_value(v, text) for v in value]
    if isinstance(value, dict):
        return {k: _literal_value(v, text or str(k) in TEXT_KEYS) for k, v in value.items()}
    return value


def literal_text_overrides(argv: list[str]) -> list[str]:
    """`argv` with every user-text override (prompt=..., sampler.negative_prompt=...,
    callbacks.sample_videos.prompts=[...], the prompts of benchmark.items=[{...}]) rewritten so
    that the config holds exactly the text typed: `prompt=${oc.env:HOME}` is those 15 characters,
    never the environment. Other settings keep their interpolations (a path may use ${oc.env:...});
    an override Hydra cannot read is kept (the precheck reports it)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, Override, QuotedString
    from hydra.errors import HydraException

    parser = None
    out = []
    for a in argv:
        if a.startswith("-") or "${" not in a.partition("=")[2]:
            out.append(a)
            continue
        parser = parser or OverridesParser.create()
        try:
            (o,) = parser.parse_overrides([a])
        except (HydraException, ValueError):
            out.append(a)
            continue
        text = o.key_or_group.rpartition(".")[2] in TEXT_KEYS
        if isinstance(o._value, ChoiceSweep) and o._value.simple_form:
            new = [_literal_value(v, text) for v in o._value.list]
            value = ",".join(Override._get_value_element_as_str(v) for v in new)
            changed = new != list(o._value.list)
        elif isinstance(o._value, list | dict | str | QuotedString):
            new = _literal_value(o._value, text)
            value, changed = Override._get_value_element_as_str(new), new != o._value
        else:
            changed = False
        out.append(f"{o.get_key_element()}={value}" if changed else a)
    return out


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
        cfg = _raw_compose(config_name, overrides, return_hydra_config)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise UserError(explain_compose_error(config_name, overrides, exc)) from None
    check_targets(cfg)
    return cfg


# Modules a `_target_` may never name, whatever Hydra's own policy says (it can run code).
_BLOCKED_TARGETS = (
    "os.", "posix.", "nt.", "subprocess.", "builtins.", "sys.", "shutil.", "importlib.", "pickle.",
    "marshal.", "runpy.", "ctypes.", "code.", "codeop.", "pty.", "socket.", "webbrowser.",
)  # fmt: skip


def _blocked_target(target: str) -> bool:
    try:
        from hydra._internal.target_policy import _is_blocklisted_target
    except ImportError:  # an upstream Hydra without a target policy: our list alone
        _is_blocklisted_target = None
    if _is_blocklisted_target is not None and _is_blocklisted_target(target):
        return True
    return target.startswith(_BLOCKED_TARGETS) or "." not in target


def check_targets(cfg) -> None:
    """Every `_target_` in a composed config (Hydra's own node included: hydra.callbacks are built
    at start-up) must be a plain dotted name that is not an executable capability (os.system,
    builtins.eval, subprocess.*, ...): one line naming the setting, before anything is built."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                key = f"{prefix}.{k}" if prefix else str(k)
                if k == "_target_":
                    t = v if isinstance(v, str) else repr(v)
                    if not isinstance(v, str) or "${" in t or not re.fullmatch(r"[A-Za-z_][\w.]*", t):
                        raise UserError(f"{key}={t[:80]!r} is not allowed: a _target_ is a plain dotted name")
                    if _blocked_target(t):
                        raise UserError(
                            f"{key}={t!r} is not allowed: a config may not name a target that runs "
                            "commands or code (os, subprocess, builtins, ...)"
                        )
                walk(v, key)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{prefix}[{i}]")

    if isinstance(cfg, DictConfig | ListConfig):
        cfg = OmegaConf.to_container(cfg, resolve=False)
    walk(cfg, "")


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


# ----------------------------------------------------------------------------- user config folders
CONFIG_DIR_FLAGS = ("--config-dir", "-cd")


def _hydra_quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def with_config_dirs(argv: list[str]) -> list[str]:
    """Hydra's `--config-dir DIR` (`-cd DIR`, `--config-dir=DIR`) as the override
    `hydra.searchpath=[file://DIR]`: the folder's configs add to the shipped ones (e.g. a user's
    `experiment/mine.yaml` is then `experiment=mine`) for every CLI, animate and the checks that
    run before Hydra starts included. A `hydra.searchpath=[...]` typed too is kept (and extended)."""
    dirs, rest, k, at = [], [], 0, None
    while k < len(argv):
        arg = argv[k]
        flag, eq, value = arg.partition("=")
        if flag in CONFIG_DIR_FLAGS:
            if not eq:
                if k + 1 >= len(argv) or argv[k + 1].startswith("-"):
                    raise UserError(f"{flag} needs a folder: {flag} DIR (a folder of your own configs)")
                k += 1
                value = argv[k]
            folder = Path(value).expanduser().absolute()
            if not folder.is_dir():
                raise UserError(f"config folder not found: {folder} (given with {flag})")
            dirs.append(f"file://{folder}")
            at = len(rest) if at is None else at
        else:
            rest.append(arg)
        k += 1
    if not dirs:
        return list(argv)
    entries = [_hydra_quoted(d) for d in dirs]
    for k, arg in enumerate(rest):
        key, _, value = arg.partition("=")
        if key.lstrip("+") == "hydra.searchpath" and value.strip().startswith("["):
            inner = value.strip()[1:-1].strip()
            rest[k] = f"{key}=[{', '.join([inner, *entries] if inner else entries)}]"
            return rest
    return [*rest[:at], f"hydra.searchpath=[{', '.join(entries)}]", *rest[at:]]  # where it was typed


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


_VALUED_FLAGS = {"-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name"}
_VALUED_FLAGS |= {"-cd", "--config-dir", "--experimental-rerun"}
_INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
_SHOW_FLAGS = {"-c", "--cfg", "--resolve", "-p", "--package", "-i", "--info"}  # print, write nothing
_PASS_FLAGS = {"--hydra-help", "--version", "-sc", "--shell-completion"}  # Hydra's own pages


def split_flags(argv: list[str]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """(Hydra flags as (name, value), overrides): `--cfg job`, `--cfg=job`, `-cd DIR`, `--info`."""
    flags, overrides, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            overrides.append(a)
        else:
            name, eq, value = a.partition("=")
            if not eq and name in _VALUED_FLAGS:
                if i + 1 >= len(argv):
                    raise UserError(f"{name} needs a value (e.g. {name} job); --help lists the settings")
                i += 1
                value = argv[i]
            elif not eq and name in ("-i", "--info") and i + 1 < len(argv) and argv[i + 1] in _INFO_CHOICES:
                i += 1
                value = argv[i]
            flags.append((name, value if (eq or value) else None))
        i += 1
    return flags, overrides


def hydra_argv(argv: list[str]) -> list[str]:
    """Flags first, then the overrides: Hydra's argparse refuses a flag after an override."""
    flags, overrides = split_flags(argv)
    return [f"{n}={v}" if v is not None else n for n, v in flags] + overrides


def _check_flags(config_name: str, flags: list[tuple[str, str | None]]) -> None:
    """Refuse the Hydra flags that would run something else than conf/<config_name>.yaml (or load a
    pickle). --config-dir never gets here: `with_config_dirs` made it a hydra.searchpath override."""
    for name, value in flags:
        if name not in HYDRA_FLAGS:
            raise UserError(_unknown_option(name, "sampler.lambda_=0.3"))
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
        if name in ("-c", "--cfg") and value not in ("job", "hydra", "all"):
            raise UserError(f"{name} takes job, hydra or all, got {value!r}")


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

    flags, overrides = split_flags(argv)
    _check_flags(config_name, flags)
    names = {n for n, _ in flags}
    if names & _PASS_FLAGS:
        return None  # Hydra prints its own page; nothing is composed or written
    multirun = bool(names & {"-m", "--multirun"})
    jobs = _sweep_jobs(overrides) if multirun else [overrides]
    if names & _SHOW_FLAGS:  # --cfg job, --info: the config is printed, nothing written; still one line
        for job in (jobs or [[o for o in overrides if "," not in o.partition("=")[2]]])[:MAX_PRECHECKED_JOBS]:
            compose_config(config_name, job, return_hydra_config=True)
        return None
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
            from .checks import check_own_folder

            check_own_folder(run_dir, "the run folder", legacy=(".hydra", "multirun.yaml"))
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


HELP_SAMPLER_KEYS = (
    "num_inference_steps",
    "guidance_scale",
    "num_frames",
    "lambda_",
    "lambda_mode",
    "align",
    "align_iters",
    "align_lr",
)
HELP_OUTPUT_KEYS = ("binarize", "binarize_upscale", "fps", "formats")


def _value(v) -> str:
    from omegaconf import OmegaConf

    v = OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
    if isinstance(v, list):
        return "[" + ",".join(map(str, v)) + "]"
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def defaults_help(config_name: str, argv: list[str]) -> str:
    """What `config_name` with these overrides will actually run, composed the way a run is (the
    model's own sampler preset included), and every model `model=` takes. '' for a config with no
    sampler (train, export, ...)."""
    from .config import SamplerConfig

    overrides = [a for a in argv if not a.startswith("-")]
    cfg = compose_config(config_name, with_model_sampler(config_name, overrides), return_hydra_config=True)
    if "sampler" not in cfg or "model" not in cfg:
        return ""
    choices = cfg.hydra.runtime.choices
    model, sampler = choices.get("model"), choices.get("sampler")
    lines = [
        f"The defaults this run uses (model={model} runs sampler={sampler}; conf/sampler/{sampler}.yaml):"
    ]
    s = cfg.sampler
    shown = [f"sampler.{k}={_value(s.get(k))}" for k in HELP_SAMPLER_KEYS if k in s]
    lines += ["  " + " ".join(shown[:4]), "  " + " ".join(shown[4:])]
    try:
        from omegaconf import OmegaConf

        tau1, tau2 = SamplerConfig.from_dict(OmegaConf.to_container(s, resolve=True)).resolved_taus()
        lines.append(
            f"  sampler.tau1={_value(s.get('tau1'))} sampler.tau2={_value(s.get('tau2'))}"
            f"   (used: alignment while step < {tau1}, composition while step <= {tau2})"
        )
    except UserError:
        pass
    if "output" in cfg:
        lines.append("  " + " ".join(f"output.{k}={_value(cfg.output.get(k))}" for k in HELP_OUTPUT_KEYS))
    lines.append(f"  model.resolution={_value(cfg.model.get('resolution'))}")
    models = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
    lines.append(f"Models (model=NAME; this run: {model}): {' | '.join(models)}")
    lines.append("Another model's defaults: {program} --help model=NAME")
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
    help_defaults: str | None = None,
):
    """The one way a FlipSketch command line is built: a console `main(argv=None) -> int`.

    Every CLI gets the same handling: `help_words` print the help page and exit 0 (`help_text`,
    followed with `help_groups` by the config groups read from conf/ and where the full config is);
    an option that is not a setting is refused; the overrides get the model's default sampler
    preset (`with_model_sampler`), then `prepare_argv(argv)` (e.g. a resumed run's folder); the
    config is composed and `check(cfg)` runs before anything is written; a `UserError` anywhere is
    one `error:` line on stderr and exit code 2; `on_exit()` always runs after the task (by default
    `tracking.finish_wandb`: no W&B run is left open, e.g. for the next job of a sweep).

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
            shown = help_defaults or config_name  # the defaults the chosen (or default) model runs
            extra = defaults_help(shown, [a for a in argv if a not in help_words]) if shown else ""
            if extra:
                print("\n" + extra.replace("{program}", program or f"flipsketch-{config_name}"))
            return 0
        if config_name is not None:  # --config-dir DIR: the user's configs join Hydra's search path
            argv = with_config_dirs(argv)  # (the app composes per request: a flag there is a typo)
        if hydra_main is None:  # no Hydra flags here: every option is a typo
            flags = [a for a in argv if a.startswith("-")]
            if flags:
                raise UserError(_unknown_option(flags[0], flag_example))
        from .quiet import quiet_third_party

        quiet_third_party()
        argv = literal_text_overrides(argv)  # a prompt is text, never an interpolation
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
        except Exception as exc:
            full = as_disk_full(exc)
            if full is None:
                raise
            errors.append(full)  # one line; a run folder holding checkpoints is kept (resume it)
            run_dir = _current_run_dir()
            if run_dir is None or not any((run_dir / "checkpoints").glob("*.ckpt")):
                failed_dirs.append(run_dir)
            return None
        finally:
            if on_exit is not None:
                on_exit()

    def run(argv: list[str]) -> int:
        errors.clear()
        failed_dirs.clear()
        anchor = precheck(config_name, argv, check)
        saved = sys.argv
        sys.argv = [saved[0] if saved else config_name, *hydra_argv(argv)]
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
    from .checks import mark_own_folder

    mark_own_folder(run_dir, f"flipsketch-{config_name}")  # ours: a resumed run may write into it
    path.write_text(json.dumps(starts, indent=2), encoding="utf-8")


def _record_job(cfg, value, metrics) -> None:
    """Inside a multirun: <job>/job_result.json, which the sweep's combined table reads.
    `metrics`: {name: number}, or ({name: number}, {name: what scored it}, scoring policy text)."""
    labels = scoring = None
    if isinstance(metrics, tuple):
        metrics, labels, scoring = metrics
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

    write_job_result(run_dir, overrides, cfg.get("optimized_metric"), value, metrics, labels, scoring)


def _current_run_dir() -> Path | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except Exception:  # noqa: BLE001 - outside a Hydra run there is no run folder
        return None
