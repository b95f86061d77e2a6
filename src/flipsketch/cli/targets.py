"""What a composed config may build: a `_target_` (or a logging `class` / `()`) from the allowlist
only, and `instantiate_checked`, which checks the node and lets a `UserError` come out as itself."""

from __future__ import annotations

import functools
import os
import re

from ..errors import UserError
from ..resources import CONF_DIR
from . import hydra_adapter as hy

ALLOW_ENV = "FLIPSKETCH_ALLOW_TARGETS"  # comma-separated names; `pkg.*` allows a package's own classes
PROJECT_PACKAGES = ("flipsketch", "data_gen")  # resolved: the object must be defined in the package

# The framework classes the shipped configs and Hydra's own defaults use, beside those read from conf/.
FRAMEWORK_TARGETS = frozenset({
    *hy.CORE_PLUGIN_TARGETS,
    "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "optuna.samplers.TPESampler", "optuna.samplers.RandomSampler", "optuna.samplers.CmaEsSampler",
    "optuna.samplers.GridSampler", "optuna.samplers.NSGAIISampler",
    "logging.StreamHandler", "logging.Formatter",
    "pytorch_lightning.callbacks.ModelCheckpoint", "pytorch_lightning.callbacks.EarlyStopping",
    "pytorch_lightning.callbacks.LearningRateMonitor", "pytorch_lightning.callbacks.RichProgressBar",
    "pytorch_lightning.callbacks.TQDMProgressBar", "pytorch_lightning.callbacks.ModelSummary",
    "pytorch_lightning.callbacks.StochasticWeightAveraging", "pytorch_lightning.callbacks.Timer",
    "pytorch_lightning.loggers.CSVLogger", "pytorch_lightning.loggers.TensorBoardLogger",
    "pytorch_lightning.loggers.WandbLogger",
    "torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD",
    "torch.optim.lr_scheduler.CosineAnnealingLR", "torch.optim.lr_scheduler.LambdaLR",
    "torch.optim.lr_scheduler.StepLR", "torch.optim.lr_scheduler.LinearLR",
    "torch.optim.lr_scheduler.ConstantLR",
})  # fmt: skip
# Hydra's default job log: a FileHandler is allowed only writing inside the run's own folder.
_RUN_LOG = re.compile(r"\$\{hydra[:.]runtime\.output_dir\}/[\w${}.:-]+\.log")
_STREAMS = ("ext://sys.stdout", "ext://sys.stderr")


@functools.cache
def shipped_targets() -> frozenset[str]:
    """Every `_target_` named in the shipped conf/ (read as text: no config is composed)."""
    found = set()
    for path in CONF_DIR.rglob("*.yaml"):
        found |= set(re.findall(r"_target_:\s*([A-Za-z_][\w.]*)", path.read_text(encoding="utf-8")))
    return frozenset(found)


def _user_allowed() -> tuple[set[str], tuple[str, ...]]:
    names = [n.strip() for n in os.environ.get(ALLOW_ENV, "").split(",") if n.strip()]
    return {n for n in names if not n.endswith(".*")}, tuple(n[:-2] for n in names if n.endswith(".*"))


def _defined_in(target: str, packages: tuple[str, ...]) -> bool:
    """`target` names a class or function defined in one of `packages` (not something a module
    of theirs imported, e.g. flipsketch.atomic.os.system)."""
    if not target.startswith(tuple(p + "." for p in packages)):
        return False
    from hydra.utils import get_object

    try:
        obj = get_object(target)
    except Exception:  # noqa: BLE001 - a name that does not resolve is refused
        return False
    module = getattr(obj, "__module__", None) or ""
    qual = getattr(obj, "__qualname__", "")
    return (
        callable(obj)
        and module.partition(".")[0] in packages
        and bool(qual)
        and target.endswith("." + qual)
        and "<" not in qual
    )


def allowed_target(target: str) -> bool:
    """True for a name on the allowlist (see docs/safety.md)."""
    exact, packages = _user_allowed()
    if target in FRAMEWORK_TARGETS or target in exact:
        return True
    if target in shipped_targets():
        return True
    return _defined_in(target, PROJECT_PACKAGES + packages)


def _refuse(key: str, target: str) -> UserError:
    return UserError(
        f"{key}={target!r} is not allowed: a config may build only FlipSketch's own classes and the "
        f"framework classes its configs use (docs/safety.md); to allow it on purpose: "
        f"{ALLOW_ENV}={target}"
    )


def _check_name(key: str, value) -> None:
    t = value if isinstance(value, str) else repr(value)
    if not isinstance(value, str) or "${" in t or not re.fullmatch(r"[A-Za-z_][\w.]*", t):
        raise UserError(f"{key}={t[:80]!r} is not allowed: a _target_ is a plain dotted name")
    if not allowed_target(t):
        raise _refuse(key, t)


def _check_logging(node, key: str) -> None:
    """A logging dictConfig (hydra.job_logging, hydra.hydra_logging): its `class` and `()` from
    the allowlist, a FileHandler only into the run folder, `ext://` only sys.stdout/sys.stderr."""
    if isinstance(node, dict):
        for k, v in node.items():
            sub = f"{key}.{k}"
            if k in ("class", "()"):
                if v == "logging.FileHandler" and _RUN_LOG.fullmatch(str(node.get("filename", ""))):
                    continue
                _check_name(sub, v)
            _check_logging(v, sub)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_logging(v, f"{key}[{i}]")
    elif isinstance(node, str) and node.startswith("ext://") and node not in _STREAMS:
        raise _refuse(key, node)


def check_targets(cfg) -> None:
    """Every `_target_` in a composed config (Hydra's own node included: hydra.callbacks, the
    launcher, the sweeper, the logging handlers are built at start-up) must be on the allowlist:
    one line naming the setting and how to extend the list, before anything is built."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                key = f"{prefix}.{k}" if prefix else str(k)
                if k == "_target_":
                    _check_name(key, v)
                elif key in ("hydra.job_logging", "hydra.hydra_logging"):
                    _check_logging(v, key)
                walk(v, key)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{prefix}[{i}]")

    if isinstance(cfg, DictConfig | ListConfig):
        cfg = OmegaConf.to_container(cfg, resolve=False)
    walk(cfg, "")


def instantiate_checked(node, **kwargs):
    """`hydra.utils.instantiate` of a checked node (its targets on the allowlist) that lets a
    UserError raised inside come out as itself (Hydra wraps every error with a stack trace)."""
    from hydra.utils import instantiate

    check_targets(node)
    try:
        return instantiate(node, **kwargs)
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, UserError):
                raise cause from None
            cause = cause.__cause__ or cause.__context__
        raise
