"""The import layering of docs/ARCHITECTURE.md, enforced: every module's imports (function-level
ones included) may only point at its own layer or the layers below it, and nothing imports a CLI.

    foundation <- data_gen <- training, evaluation          (data_gen: only the foundation)
    foundation <- models <- sampling <- training, evaluation
    foundation <- harness (the flipsketch.cli package, sweeps) <- training, evaluation
    CLIs on top (animate, train, eval, export, demo, app, data_gen.__main__, tiny_world.__main__)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"flipsketch": REPO / "src" / "flipsketch", "data_gen": REPO / "data_gen"}

# Module (or package prefix) -> layer; the longest matching prefix wins.
LAYER_OF = {
    "flipsketch": "foundation",  # the package itself: __version__
    "flipsketch.errors": "foundation",
    "flipsketch.checks": "foundation",
    "flipsketch.quiet": "foundation",
    "flipsketch.provenance": "foundation",
    "flipsketch.atomic": "foundation",
    "flipsketch.tracking": "foundation",
    "flipsketch.config": "foundation",
    "flipsketch.resources": "foundation",  # where conf/ and the shipped files are (checkout or wheel)
    "flipsketch.fonts": "foundation",  # the label font of the contact sheets (PIL)
    "flipsketch.threads": "foundation",  # the torch thread count every entry point uses
    "flipsketch.peak_memory": "foundation",  # the benchmark scripts' memory probe
    "flipsketch.stats": "foundation",  # bootstrap intervals: the eval tables and the sweeps' best job
    "flipsketch.cli": "harness",  # the cli/ package: config composition + the console-main builder, not a CLI
    "flipsketch.sweeps": "harness",
    "data_gen": "data",
    "flipsketch.models": "models",
    "flipsketch.pipeline": "sampling",
    "flipsketch.denoise": "sampling",  # the denoising loop of a sampling call
    "flipsketch.progress": "sampling",  # a sampling call's progress bar and UNet-call counter
    "flipsketch.sketch_cache": "sampling",  # what a sampling call computes once per sketch
    "flipsketch.api": "sampling",  # the diffusers-shaped Python API over the sampler core
    "flipsketch.attention": "sampling",
    "flipsketch.alignment": "sampling",
    "flipsketch.inversion": "sampling",
    "flipsketch.sketch": "sampling",
    "flipsketch.ink": "sampling",  # Otsu, binarisation, ink masks: outputs, vector and the metrics' threshold
    "flipsketch.outputs": "sampling",
    "flipsketch.pictures": "sampling",
    "flipsketch.vector": "sampling",  # SVG tracing of written frames: output writing, like outputs
    "flipsketch.flipbook": "sampling",  # the animate task (flipsketch-animate and the app call it)
    "flipsketch.training": "training",
    "flipsketch.tiny_world": "training",
    "flipsketch.evaluation": "evaluation",
    "flipsketch.metrics": "evaluation",
    "flipsketch.baselines": "evaluation",
    # entry points: nothing imports them
    "flipsketch.animate": "cli",
    "flipsketch.train": "cli",
    "flipsketch.eval": "cli",
    "flipsketch.export": "cli",
    "flipsketch.demo": "cli",
    "flipsketch.app": "cli",
    "data_gen.__main__": "cli",
    "flipsketch.tiny_world.__main__": "cli",
}

# What each layer may import (besides itself). A CLI may import every layer but no other CLI.
MAY_IMPORT = {
    "foundation": set(),
    "harness": {"foundation"},
    "data": {"foundation"},
    "models": {"foundation"},
    "sampling": {"foundation", "models"},
    "training": {"foundation", "harness", "data", "models", "sampling"},
    "evaluation": {"foundation", "harness", "data", "models", "sampling"},
    "cli": {"foundation", "harness", "data", "models", "sampling", "training", "evaluation"},
}

# Edges that still run the wrong way, each with the edit that removes it. Empty: every import runs
# down the stack. A line added here that no longer matches an import fails
# `test_allowlist_has_no_stale_entries`, so the list can only shrink again.
ALLOWED_EXCEPTIONS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    root = next(name for name, folder in ROOTS.items() if path.is_relative_to(folder))
    parts = [root, *path.relative_to(ROOTS[root]).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    root, *rest = name.split(".")
    base = ROOTS.get(root)
    if base is None:
        return False
    p = base.joinpath(*rest)
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """Every flipsketch/data_gen module `source` imports, at any depth (function bodies too);
    `from pkg import name` counts as `pkg.name` when that is a module."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            modules = {f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")}
            if len(modules) < len(node.names):  # `from pkg import sub` imports sub (pkg runs first anyway)
                out.add(target)
            out |= modules
    return {m for m in out if m.split(".")[0] in ROOTS}


def layer(module: str) -> str:
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in LAYER_OF:
            return LAYER_OF[".".join(parts[:k])]
    raise KeyError(module)


def all_imports() -> dict[str, set[str]]:
    edges = {}
    for folder in ROOTS.values():
        for path in sorted(folder.rglob("*.py")):
            mod = module_name(path)
            edges[mod] = imported_modules(path.read_text(encoding="utf-8"), mod, path.name == "__init__.py")
    return edges


def violations(edges: dict[str, set[str]]) -> list[tuple[str, str, str]]:
    """(importer, imported, why) for every import that points up, sideways across layers, or at a CLI."""
    bad = []
    for src, targets in sorted(edges.items()):
        for dst in sorted(targets):
            a, b = layer(src), layer(dst)
            if b == "cli" and dst != src:
                bad.append((src, dst, f"imports the command-line module {dst}"))
            elif a != b and b not in MAY_IMPORT[a]:
                bad.append((src, dst, f"{a} may not import {b}"))
    return bad


@pytest.fixture(scope="module")
def edges():
    return all_imports()


def test_every_module_has_a_layer(edges):
    for mod in edges:
        layer(mod)  # KeyError names a module that LAYER_OF does not place


def test_no_import_runs_up_the_stack(edges):
    bad = [v for v in violations(edges) if v[:2] not in ALLOWED_EXCEPTIONS]
    assert not bad, "\n".join(f"{s} -> {d}: {why}" for s, d, why in bad)


def test_allowlist_has_no_stale_entries(edges):
    found = {v[:2] for v in violations(edges)}
    stale = sorted(ALLOWED_EXCEPTIONS - found)
    assert not stale, f"fixed, so delete from ALLOWED_EXCEPTIONS: {stale}"


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles among `edges`' modules (strongly connected groups of two or more)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_two_modules_import_each_other(edges):
    """Within a layer too, imports run one way (outputs calls vector; Otsu is in ink, not outputs)."""
    assert not cycles(edges), cycles(edges)
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]


def test_the_checker_sees_upward_and_function_level_imports():
    """The checker itself: an upward import inside a function, a relative one, and one of a CLI."""
    src = "def f():\n    from ..training.checkpoint import read_checkpoint\n"
    found = imported_modules(src, "flipsketch.models.registry", False)
    assert "flipsketch.training.checkpoint" in found
    bad = violations({"flipsketch.models.registry": found})
    assert [(s, d) for s, d, _ in bad] == [("flipsketch.models.registry", "flipsketch.training.checkpoint")]
    # `from pkg import module` is an import of that module; a CLI importing a CLI is refused
    found = imported_modules("from flipsketch import train\n", "flipsketch.demo", False)
    assert "flipsketch.train" in found
    assert violations({"flipsketch.demo": found})[0][2].startswith("imports the command-line module")
    # data_gen stays on the foundation
    found = imported_modules("from flipsketch.models import lora\n", "data_gen.build", False)
    assert violations({"data_gen.build": found})[0][2] == "data may not import models"
    assert not violations({"data_gen.build": {"flipsketch.atomic", "flipsketch.errors", "data_gen.svg_io"}})


def test_no_module_imports_another_modules_private_names():
    """`from x import _name` across our modules is refused: a name another module needs is public."""
    bad = []
    for folder in ROOTS.values():
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (
                    node.level or (node.module or "").split(".")[0] in ROOTS
                ):
                    bad += [
                        f"{path.name}: {a.name}"
                        for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")
                    ]
    assert not bad, bad


# tests/ mirrors the source tree: tests/<name>/ holds the tests of the package or module <name> of
# src/flipsketch or data_gen; tests of flat modules and project-wide tests sit at tests/ top level.
# Folders for behaviour that cuts across packages are declared here.
CROSS_CUTTING_TEST_FOLDERS = {"safety": "untrusted input, files, network and disk, across every CLI"}


def mirror_problems(tests: Path, roots: dict[str, Path]) -> tuple[list[str], list[str]]:
    """(folders of Python files under `tests` named after no package or module of `roots` nor declared
    cross-cutting, those folders without an __init__.py)."""
    sources = set(roots)  # data_gen itself
    for root in roots.values():
        sources |= {p.stem for p in root.glob("*.py")}
        sources |= {p.parent.name for p in root.glob("*/__init__.py")}
    folders = sorted(
        d
        for d in tests.rglob("*")
        if d.is_dir() and not d.name.startswith((".", "_")) and any(d.glob("*.py"))
    )
    stray = [
        str(d.relative_to(tests))
        for d in folders
        if d.relative_to(tests).parts[0] not in sources | set(CROSS_CUTTING_TEST_FOLDERS)
    ]
    no_init = [str(d.relative_to(tests)) for d in folders if not (d / "__init__.py").is_file()]
    return stray, no_init


def test_every_test_folder_mirrors_a_source_package_or_module():
    tests = Path(__file__).resolve().parent
    assert any(d.is_dir() and (d / "__init__.py").is_file() for d in tests.iterdir())
    stray, no_init = mirror_problems(tests, ROOTS)
    assert not stray, f"test folders named after no package or module of src/flipsketch or data_gen: {stray}"
    assert not no_init, (
        f"test folders without __init__.py (tests import as tests.<folder>.<module>): {no_init}"
    )


def test_the_mirror_check_sees_a_stray_folder_and_a_missing_init(tmp_path):
    src = tmp_path / "src" / "pkg"
    (src / "models").mkdir(parents=True)
    (src / "models" / "__init__.py").write_text("")
    (src / "pipeline.py").write_text("")
    tests = tmp_path / "tests"
    for name, init in [
        ("models", True),
        ("pipeline", True),
        ("safety", True),
        ("sampling", True),
        ("evaluation", False),
    ]:
        (tests / name).mkdir(parents=True)
        (tests / name / "test_x.py").write_text("")
        if init:
            (tests / name / "__init__.py").write_text("")
    (tests / "fixtures").mkdir()  # data only: not a test folder
    (tests / "fixtures" / "a.json").write_text("{}")
    assert mirror_problems(tests, {"pkg": src}) == (["evaluation", "sampling"], ["evaluation"])


# The design review's size limits (docs/ARCHITECTURE.md, "Size and shape"): a module of the command-line
# harness stays one job, the sampler core reads as numbered steps.
SHAPE_LIMITS = [
    ("src/flipsketch/pipeline.py", "FlipSketchPipeline", 250),
    ("src/flipsketch/pipeline.py", "FlipSketchPipeline.__call__", 90),
    ("src/flipsketch/train.py", "check", 20),
]


def _length(path: Path, dotted: str) -> int:
    node: ast.AST = ast.parse(path.read_text())
    for name in dotted.split("."):
        node = next(
            n
            for n in ast.iter_child_nodes(node)
            if isinstance(n, ast.ClassDef | ast.FunctionDef) and n.name == name
        )
    return node.end_lineno - node.lineno + 1


@pytest.mark.parametrize(("file", "name", "limit"), SHAPE_LIMITS)
def test_the_core_stays_within_its_size(file, name, limit):
    assert _length(REPO / file, name) <= limit


def test_no_cli_module_is_over_300_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (REPO / "src/flipsketch/cli").glob("*.py")}
    assert len(sizes) >= 7 and max(sizes.values()) <= 300, sizes
