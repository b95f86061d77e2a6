"""Where the package's own files are, in a source checkout and in an installed wheel.

* `CONF_DIR`: the Hydra configs. In a checkout: the repository's top-level `conf/` (the layout is
  part of the design). In an installed wheel: the same files, carried as the package data
  `flipsketch/conf` (pyproject maps `flipsketch.conf` -> `conf`), which Hydra also finds as
  `pkg://flipsketch.conf`. A user's own configs add on through Hydra's search path
  (`--config-dir DIR` or `hydra.searchpath=[DIR]`; docs/install.md).
* `ROOT_DIR`: what repository-relative paths in the configs (e.g. the shipped benchmark's
  `root: data_gen/sketches`) are read from: the checkout, or the folder the installed packages
  `flipsketch` and `data_gen` sit in (site-packages).

Foundation layer: imports nothing of the package.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parents[1]  # the checkout (src/flipsketch -> repo), when there is one
CONF_PACKAGE = "pkg://flipsketch.conf"  # the installed configs as a Hydra search-path entry


def in_checkout(root: Path = SOURCE_ROOT) -> bool:
    """True when the package runs from a source checkout (pyproject.toml and conf/ beside src/)."""
    return (root / "pyproject.toml").is_file() and (root / "conf" / "animate.yaml").is_file()


CONF_DIR = SOURCE_ROOT / "conf" if in_checkout() else PACKAGE_DIR / "conf"
ROOT_DIR = SOURCE_ROOT if in_checkout() else PACKAGE_DIR.parent
