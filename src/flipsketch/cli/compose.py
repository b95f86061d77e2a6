"""Composing conf/<name>.yaml with the command line's overrides: the user's --config-dir folders,
the model's default sampler preset, and one `UserError` line for anything that does not compose."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import register_configs
from ..errors import UserError
from ..resources import CONF_DIR
from ..safe_yaml import check_config_folder
from . import hydra_adapter as hy
from .explain import config_groups, explain_compose_error, parse_overrides
from .targets import check_targets

MAX_PRECHECKED_JOBS = 64  # a multirun's first jobs are composed and checked up front


def conf_dir() -> str:
    if not CONF_DIR.is_dir():
        raise UserError(
            f"config folder not found: {CONF_DIR} (reinstall flipsketch: its wheel carries conf/)"
        )
    return str(CONF_DIR)


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the `-`/`--` flags, the key=value overrides) of a command line."""
    flags = [a for a in argv if a.startswith("-")]
    return flags, [a for a in argv if not a.startswith("-")]


# One command's compositions, kept while `composition_cache()` is open: the model-sampler pick,
# a resumed run's folder and the precheck compose the same job once.
_cache: dict | None = None


@contextmanager
def composition_cache() -> Iterator[None]:
    global _cache
    outer, _cache = _cache, {} if _cache is None else _cache
    try:
        yield
    finally:
        _cache = outer


def raw_compose(config_name: str, overrides: list[str], return_hydra_config: bool = False):
    """Hydra's compose of conf/<config_name>.yaml, errors as Hydra raises them."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    key = (config_name, tuple(overrides), return_hydra_config)
    if _cache is not None and key in _cache:
        return copy.deepcopy(_cache[key])
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
            cfg = compose(
                config_name=config_name,
                overrides=list(overrides),
                return_hydra_config=return_hydra_config,
            )
    finally:
        GlobalHydra.instance().clear()
    if _cache is not None:
        _cache[key] = copy.deepcopy(cfg)
    return cfg


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


def known_keys(config_name: str, overrides: list[str], bad: str) -> list[str]:
    """Keys of the config composed without the offending override (or with none at all)."""
    rest = [o for o in overrides if o.lstrip("+~").partition("=")[0] != bad]
    for attempt in (rest, []):
        try:
            cfg = raw_compose(config_name, attempt)
        except hy.hydra_errors():
            continue
        return [k for k in config_keys(cfg) if not k.startswith("hydra")] + config_groups()
    return config_groups()


def compose_config(config_name: str, overrides: list[str], return_hydra_config: bool = False):
    """Compose conf/<config_name>.yaml with Hydra overrides; bad overrides become one UserError line."""
    overrides = list(overrides)
    parse_overrides(overrides)
    try:
        cfg = raw_compose(config_name, overrides, return_hydra_config)
    except hy.hydra_errors() as exc:
        raise UserError(
            explain_compose_error(overrides, exc, lambda bad: known_keys(config_name, overrides, bad))
        ) from None
    check_targets(cfg)
    return cfg


def sweep_jobs(overrides: list[str]) -> list[list[str]] | None:
    """The override lists of a command-line multirun (None: a sweep only Hydra's sweeper can expand)."""
    return hy.basic_sweep_jobs(parse_overrides(overrides))


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
    shown = ("--cfg", "-c", "--package", "-p")  # --cfg job: show the config this run would use
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        skip = a in shown
        if a not in shown and a != "--resolve":
            rest.append(a)
    flags, overrides = split_argv(rest)
    if _picks_group(overrides, "sampler") or any(f not in hy.MULTIRUN_FLAGS for f in flags):
        return list(argv)
    primary = _primary_default(config_name, "sampler")
    if primary is None:  # no sampler group in this config (train, export, ...)
        return list(argv)
    multirun = any(f in hy.MULTIRUN_FLAGS for f in flags)
    try:
        jobs = (sweep_jobs(overrides) if multirun else [overrides]) or [[]]
    except UserError:
        return list(argv)  # the precheck reports the bad override
    wanted = set()
    for job in jobs[:MAX_PRECHECKED_JOBS]:
        try:
            cfg = raw_compose(config_name, job, return_hydra_config=True)
            choice = str(cfg.hydra.runtime.choices.get("sampler"))
            default = cfg.model.get("default_sampler") if "model" in cfg else None
        except hy.hydra_errors():
            return list(argv)  # the precheck reports it
        wanted.add(default if default and choice == primary and default != primary else None)
    if len(wanted) != 1 or None in wanted:
        return list(argv)
    return [*argv, f"sampler={wanted.pop()}"]


# ----------------------------------------------------------------------------- user config folders
CONFIG_DIR_FLAGS = ("--config-dir", "-cd")


def hydra_quoted(text: str) -> str:
    """`text` as one single-quoted Hydra override value (backslashes and quotes escaped)."""
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
            check_config_folder(folder)  # size, aliases, tags: before Hydra parses any of it
            dirs.append(f"file://{folder}")
            at = len(rest) if at is None else at
        else:
            rest.append(arg)
        k += 1
    for arg in rest:  # a hydra.searchpath typed as such: its folders are checked the same way
        if arg.lstrip("+").partition("=")[0] == "hydra.searchpath":
            for typed in re.findall(r"file://([^'\",\]]+)", arg):
                if Path(typed).is_dir():
                    check_config_folder(Path(typed))
    if not dirs:
        return list(argv)
    entries = [hydra_quoted(d) for d in dirs]
    for k, arg in enumerate(rest):
        key, _, value = arg.partition("=")
        if key.lstrip("+") == "hydra.searchpath" and value.strip().startswith("["):
            inner = value.strip()[1:-1].strip()
            rest[k] = f"{key}=[{', '.join([inner, *entries] if inner else entries)}]"
            return rest
    return [*rest[:at], f"hydra.searchpath=[{', '.join(entries)}]", *rest[at:]]  # where it was typed


# ----------------------------------------------------------------------------- user text
# Settings that hold user text: a prompt is data, never an OmegaConf interpolation.
TEXT_KEYS = ("prompt", "prompts", "negative_prompt")


def _literal_value(value, text: bool):
    """A parsed override value with its user text (all strings when `text`, else the strings under
    a TEXT_KEYS key of a mapping, e.g. benchmark.items=[{prompt: ...}]) quoted and escaped."""
    from ..checks import literal_text

    raw = hy.text_of(value)
    if raw is not None:
        return hy.single_quoted(literal_text(raw)) if text and "${" in raw else value
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
    from hydra.errors import HydraException

    parser = None
    out = []
    for a in argv:
        if a.startswith("-") or "${" not in a.partition("=")[2]:
            out.append(a)
            continue
        parser = parser or hy.override_parser()
        try:
            (o,) = hy.parse_one(parser, a)
        except (HydraException, ValueError):
            out.append(a)
            continue
        text = o.key_or_group.rpartition(".")[2] in TEXT_KEYS
        value = hy.override_value(o)
        choices = hy.simple_choice_list(value)
        if choices is not None:
            new = [_literal_value(v, text) for v in choices]
            written = ",".join(hy.value_text(v) for v in new)
            changed = new != choices
        elif hy.is_text_like(value):
            new = _literal_value(value, text)
            written, changed = hy.value_text(new), new != value
        else:
            changed = False
        out.append(f"{o.get_key_element()}={written}" if changed else a)
    return out
