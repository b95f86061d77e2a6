"""Bad overrides explained in one line: a parse error says which override and how to quote it, an
unknown key or group option says "did you mean ...", a comma in text says how to write text."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from ..errors import UserError
from ..resources import CONF_DIR
from . import hydra_adapter as hy


def config_groups() -> list[str]:
    """The config groups shipped in conf/ (its folders)."""
    return sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir()) if CONF_DIR.is_dir() else []


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


def parse_error_message(override: str, exc: Exception) -> str:
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
    from hydra.errors import HydraException

    parser = hy.override_parser()
    parsed = []
    for o in overrides:
        try:
            parsed += hy.parse_one(parser, o)
        except HydraException as exc:
            raise UserError(parse_error_message(o, exc)) from None
    return parsed


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


def explain_compose_error(
    overrides: list[str], exc: Exception, known_keys: Callable[[str], list[str]]
) -> str:
    """The one line for a config that does not compose; `known_keys(bad)` lists the keys the
    config has without the offending override (for "did you mean")."""
    text = str(exc)
    missing = hy.missing_option(text)
    if missing:
        group, option, opts = missing
        if not opts and (CONF_DIR / group).is_dir():
            opts = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        choose = f"; choose one of {', '.join(opts)}" if opts else ""
        plugin = ""
        if group.startswith("hydra/") and option.split("_")[0] in ("optuna", "submitit"):
            plugin = f" ({option.split('_')[0]} is a plugin: pip install -e '.[sweep]')"
        return f"bad configuration: unknown {group}={option}{plugin}{choose}{did_you_mean(option, opts)}"
    key = hy.unknown_key(text)
    if key:
        value = next((o.partition("=")[2] for o in overrides if o.lstrip("+~").partition("=")[0] == key), "")
        groups = [g for g in config_groups() if (CONF_DIR / g / f"{value}.yaml").is_file()]
        hint = did_you_mean(key, groups) or did_you_mean(key, known_keys(key))
        return f"bad configuration: unknown setting {key!r}{hint}"
    argument = hy.ambiguous_argument(text)
    if argument:
        key, _, value = argument.partition("=")
        return (
            f"bad configuration: {argument!r} has a comma, which makes a list or a sweep; "
            f"for text write {key}='{value}' (in bash: \"{key}='{value}'\"), for a list {key}=[...]"
        )
    msg = hy.hydra_message(text)
    if isinstance(exc.__cause__, Exception) and str(exc.__cause__):
        msg += " (" + " ".join(str(exc.__cause__).split())[:150] + ")"
    return f"bad configuration: {msg[:300]}"


def first_line(exc: BaseException) -> str:
    return " ".join((str(exc).strip().splitlines() or [type(exc).__name__])[0].split())[:200]


def unknown_option(flag: str, example: str) -> str:
    return f"unknown option {flag!r}: settings are key=value (e.g. {example}); --help lists them"
