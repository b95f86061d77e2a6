"""Bounded YAML: a config file checked before any parser expands it (size, alias expansion,
only the plain YAML tags), every problem one `UserError` line with the file and line number."""

from __future__ import annotations

from pathlib import Path

from .errors import UserError

MAX_YAML_BYTES = 1_000_000  # a config is text a person wrote: 1 MB is far above any shipped one
MAX_YAML_NODES = 200_000  # values after alias expansion (an alias bomb expands to billions)
MAX_CONFIG_FILES = 2_000  # in one --config-dir
_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{t}"
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "binary", "merge", "set")
}


def check_yaml_text(text: str, where: str) -> None:
    """`text` (read from `where`) is one or more YAML documents within the limits: one line if not."""
    import yaml

    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise UserError(f"{where}: a config file may be at most {MAX_YAML_BYTES // 1_000_000} MB")
    try:
        roots = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{where}{line}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    sizes: dict[int, int] = {}

    def size(node) -> int:  # expanded size, each shared (aliased) node counted once per use
        if id(node) in sizes:
            return sizes[id(node)]
        if node.tag not in _PLAIN_TAGS:
            raise UserError(
                f"{where} line {node.start_mark.line + 1}: the YAML tag {node.tag!r} is not allowed "
                "(a config holds plain values only)"
            )
        sizes[id(node)] = 1  # a node that refers to itself counts once
        n = 1
        if isinstance(node, yaml.MappingNode):
            n += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            n += sum(size(v) for v in node.value)
        if n > MAX_YAML_NODES:
            raise UserError(
                f"{where}: the config expands to more than {MAX_YAML_NODES} values "
                "(YAML aliases repeated inside each other)"
            )
        sizes[id(node)] = n
        return n

    for root in roots:
        if root is not None:
            size(root)


def check_yaml_file(path: Path) -> None:
    """The YAML file at `path` within the limits (its size checked before it is read)."""
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise UserError(f"{path}: a config file may be at most {MAX_YAML_BYTES // 1_000_000} MB")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid YAML: not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    check_yaml_text(text, str(path))


def check_config_folder(folder: Path) -> None:
    """Every *.yaml / *.yml under a user's config folder within the limits."""
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if len(files) > MAX_CONFIG_FILES:
        raise UserError(f"{folder}: more than {MAX_CONFIG_FILES} config files in one --config-dir")
    for path in files:
        check_yaml_file(path)
