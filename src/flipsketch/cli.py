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


def hydra_cli(config_name: str, task, result=None, on_exit=None):
    """A console `main()` around `@hydra.main` for `task(cfg)`: a UserError raised by the task is
    one stderr line and exit code 2 (Hydra alone would print a trace and exit 1); `result(cfg, out)`
    gives the value a sweeper optimises; `on_exit()` always runs (e.g. closing the W&B run)."""
    import hydra

    errors: list[UserError] = []

    @hydra.main(config_path=conf_dir(), config_name=config_name, version_base="1.3")
    def _hydra_main(cfg):
        try:
            out = task(cfg)
            return result(cfg, out) if result is not None else None
        except UserError as exc:
            errors.append(exc)
            return None
        finally:
            if on_exit is not None:
                on_exit()

    from .errors import report_user_errors

    @report_user_errors
    def main() -> None:
        errors.clear()
        _hydra_main()
        if errors:
            raise errors[0]

    return main
