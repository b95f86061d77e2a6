"""The harness every FlipSketch command line is built from (not a command line itself).

* `compose` composes conf/<name>.yaml with the overrides (the user's --config-dir folders, the
  model's default sampler preset, user text kept literal); `targets` checks what it may build;
* `explain` turns a bad override into one `UserError` line ("did you mean ...", how to quote);
* `help` writes the --help page; `runs` prechecks a run and handles its folder and records;
* `main` builds every console `main(argv)` (`cli_main`); `hydra_adapter` is the one module that
  knows Hydra's internals.
"""

from ..resources import CONF_DIR
from .compose import (
    MAX_PRECHECKED_JOBS,
    TEXT_KEYS,
    compose_config,
    conf_dir,
    config_keys,
    hydra_quoted,
    literal_text_overrides,
    raw_compose,
    split_argv,
    with_config_dirs,
    with_model_sampler,
)
from .explain import did_you_mean, explain_compose_error, parse_overrides
from .help import defaults_help, help_page
from .hydra_adapter import HYDRA_FLAGS, hydra_argv, split_flags
from .main import cli_main
from .runs import precheck, remove_run_dir, run_check
from .targets import check_targets, instantiate_checked

__all__ = [
    "CONF_DIR",
    "HYDRA_FLAGS",
    "MAX_PRECHECKED_JOBS",
    "TEXT_KEYS",
    "check_targets",
    "cli_main",
    "compose_config",
    "conf_dir",
    "config_keys",
    "defaults_help",
    "did_you_mean",
    "explain_compose_error",
    "help_page",
    "hydra_quoted",
    "hydra_argv",
    "instantiate_checked",
    "literal_text_overrides",
    "parse_overrides",
    "precheck",
    "raw_compose",
    "remove_run_dir",
    "run_check",
    "split_argv",
    "split_flags",
    "with_config_dirs",
    "with_model_sampler",
]
