"""The one module that knows Hydra's internals (written against hydra-core 1.3; a Hydra upgrade
is caught by tests/cli/test_hydra_adapter.py, which pins everything below against the installed Hydra).

* the command-line flags Hydra's own argparse parser takes, and which of them take a value;
* the override grammar's value types (`Override._value`, `Override._get_value_element_as_str`);
* the basic sweeper's expansion of `a=1,2 b=x,y` into job override lists;
* the wording of Hydra's composition errors (which group option, which key);
* Hydra's `_target_` block list, the run folder Hydra gives a job, and running `@hydra.main`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Hydra's own command-line flags (hydra/_internal/utils.py get_args_parser); anything else is a typo.
HYDRA_FLAGS = {
    "-h", "--help", "--hydra-help", "--version", "-c", "--cfg", "--resolve", "-p", "--package",
    "--run", "-r", "-m", "--multirun", "-sc", "--shell-completion", "-cp", "--config-path",
    "-cn", "--config-name", "-cd", "--config-dir", "--info", "-i", "--experimental-rerun",
}  # fmt: skip
VALUED_FLAGS = {"-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name"}
VALUED_FLAGS |= {"-cd", "--config-dir", "--experimental-rerun"}
CFG_CHOICES = ("job", "hydra", "all")  # --cfg
INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}  # --info [X]
SHOW_FLAGS = {"-c", "--cfg", "--resolve", "-p", "--package", "-i", "--info"}  # print, write nothing
PASS_FLAGS = {"--hydra-help", "--version", "-sc", "--shell-completion"}  # Hydra's own pages
MULTIRUN_FLAGS = {"-m", "--multirun"}


def hydra_version() -> str:
    import hydra

    return hydra.__version__


def split_flags(argv: list[str]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """(Hydra flags as (name, value), overrides): `--cfg job`, `--cfg=job`, `-cd DIR`, `--info`."""
    from ..errors import UserError

    flags, overrides, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            overrides.append(a)
        else:
            name, eq, value = a.partition("=")
            if not eq and name in VALUED_FLAGS:
                if i + 1 >= len(argv):
                    raise UserError(f"{name} needs a value (e.g. {name} job); --help lists the settings")
                i += 1
                value = argv[i]
            elif not eq and name in ("-i", "--info") and i + 1 < len(argv) and argv[i + 1] in INFO_CHOICES:
                i += 1
                value = argv[i]
            flags.append((name, value if (eq or value) else None))
        i += 1
    return flags, overrides


def hydra_argv(argv: list[str]) -> list[str]:
    """Flags first, then the overrides: Hydra's argparse refuses a flag after an override."""
    flags, overrides = split_flags(argv)
    return [f"{n}={v}" if v is not None else n for n, v in flags] + overrides


# ----------------------------------------------------------------------------- override grammar
def override_parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def hydra_errors() -> tuple[type[Exception], ...]:
    """What Hydra raises for a bad override or a config that does not compose."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return HydraException, OmegaConfBaseException, ValueError


def parse_one(parser, text: str):
    """One override, parsed (raises HydraException for one Hydra cannot read)."""
    return parser.parse_overrides([text])


def override_value(override):
    """The parsed value of an override: a str, QuotedString, list, dict, sweep, ..."""
    return override._value


def simple_choice_list(value) -> list | None:
    """The elements of a plain `a,b,c` sweep (None for any other value)."""
    from hydra.core.override_parser.types import ChoiceSweep

    return list(value.list) if isinstance(value, ChoiceSweep) and value.simple_form else None


def is_text_like(value) -> bool:
    from hydra.core.override_parser.types import QuotedString

    return isinstance(value, list | dict | str | QuotedString)


def text_of(value) -> str | None:
    """The characters of a string value (quoted or not); None for anything else."""
    from hydra.core.override_parser.types import QuotedString

    if isinstance(value, QuotedString):
        return value.text
    return value if isinstance(value, str) else None


def single_quoted(text: str):
    from hydra.core.override_parser.types import Quote, QuotedString

    return QuotedString(text=text, quote=Quote.single)


def value_text(value) -> str:
    """A parsed value written back as override text (the inverse of the parser)."""
    from hydra.core.override_parser.types import Override

    return Override._get_value_element_as_str(value)


def basic_sweep_jobs(parsed) -> list[list[str]] | None:
    """The basic sweeper's job override lists for parsed overrides (None: a sweep only another
    sweeper, e.g. optuna's search space, can expand)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.errors import HydraException

    try:
        batches = BasicSweeper.split_arguments(parsed, None)
    except HydraException:
        return None
    return batches[0] if batches else [[]]


# ----------------------------------------------------------------------------- error wording
def hydra_message(text: str) -> str:
    """A Hydra error message on one line, without its 'See https://...' trailer."""
    return " ".join(text.split("See https://")[0].split())


def missing_option(text: str) -> tuple[str, str, list[str]] | None:
    """(group, option, the options Hydra listed) for "Could not find 'group/option'"."""
    m = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if not m:
        return None
    opts = re.findall(r"^\t(\S+)$", text.split("Config search path")[0], flags=re.M)
    return m.group(1), m.group(2), opts


def unknown_key(text: str) -> str | None:
    """The key of "Could not override 'k'", "Could not append to 'k'" or a delete of a missing key."""
    m = re.search(r"Could not (?:override|append to) '([^']+)'", text) or re.search(
        r"Could not delete from config\. '([^']+)' does not exist", text
    )
    return m.group(1) if m else None


def ambiguous_argument(text: str) -> str | None:
    """The `key=a,b` of "Ambiguous value for argument" (a comma in a plain run)."""
    m = re.search(r"Ambiguous value for argument '([^']+)'", text)
    return m.group(1) if m else None


# Hydra's own launcher and sweeper classes (what its default config names).
CORE_PLUGIN_TARGETS = (
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
)


def hydra_blocks_target(target: str) -> bool:
    """Hydra's own `_target_` block list says no (False on a Hydra without a target policy)."""
    try:
        from hydra._internal.target_policy import _is_blocklisted_target
    except ImportError:
        return False
    return bool(_is_blocklisted_target(target))


# ----------------------------------------------------------------------------- runs
def job_output_dir(cfg, multirun: bool, job_num: int) -> Path:
    """The folder Hydra gives this job (hydra.runtime.output_dir), as hydra.core.utils.run_job
    computes it: hydra.run.dir, or hydra.sweep.dir/hydra.sweep.subdir with the job's number."""
    from omegaconf import open_dict, read_write

    if not multirun:
        return Path(str(cfg.hydra.run.dir)).absolute()
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.job.num = job_num
        cfg.hydra.job.id = str(job_num)
    return (Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)).absolute()


@contextmanager
def job_hydra_config(cfg, output_dir: Path) -> Iterator[None]:
    """`${hydra:...}` (paths.output_dir) resolves as inside the job while the block runs; the
    config's own hydra node may be removed meanwhile (HydraConfig keeps a copy)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.runtime.output_dir = str(output_dir)
    holder = HydraConfig.instance()
    saved = holder.cfg
    holder.set_config(cfg)
    try:
        yield
    finally:
        holder.cfg = saved


def current_run_dir() -> Path | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except Exception:  # noqa: BLE001 - outside a Hydra run there is no run folder
        return None


def multirun_job() -> tuple[list[str], Path] | None:
    """(this job's overrides, its folder) inside a multirun job; None otherwise."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return None
        return list(hc.overrides.task), Path(hc.runtime.output_dir)
    except (ImportError, ValueError):
        return None


def hydra_runner(config_dir: str, config_name: str, task: Callable) -> Callable[[list[str]], None]:
    """`run(argv)`: `task(cfg)` under `@hydra.main` with `argv` as its command line."""
    import hydra

    main = hydra.main(config_path=config_dir, config_name=config_name, version_base="1.3")(task)

    def run(argv: list[str]) -> None:
        saved = sys.argv
        sys.argv = [saved[0] if saved else config_name, *hydra_argv(argv)]
        try:
            main()
        finally:
            sys.argv = saved

    return run
