"""Shared plumbing for Hydra-style command lines: config composition with one-line errors."""

from __future__ import annotations

from pathlib import Path

from .errors import UserError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def conf_dir() -> str:
    if not CONF_DIR.is_dir():
        raise UserError(f"config folder not found: {CONF_DIR} (install flipsketch from a source checkout)")
    return str(CONF_DIR)


def compose_config(config_name: str, overrides: list[str]):
    """Compose conf/<config_name>.yaml with Hydra overrides; bad overrides become a UserError."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
            return compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise UserError(f"bad configuration: {msg[:300]}") from None


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
