"""W&B follows its environment variables (offline only when WANDB_MODE is unset); TensorBoard is
a logger choice, refused in one line when the package is missing."""

from __future__ import annotations

import pytest

from flipsketch.errors import UserError
from flipsketch.training import loggers
from flipsketch.training.loggers import wandb_logger, wandb_mode


@pytest.mark.parametrize(
    ("env", "offline", "mode"),
    [
        ({}, None, "offline"),  # the default
        ({"WANDB_MODE": "online"}, None, "online"),  # what the README and wandb's hint suggest
        ({"WANDB_MODE": "disabled"}, None, "disabled"),
        ({"WANDB_OFFLINE": "false"}, None, "online"),  # the legacy variable
        ({"WANDB_MODE": "online"}, True, "offline"),  # logger.wandb.offline=true forces it
    ],
)
def test_wandb_mode_follows_the_environment(monkeypatch, env, offline, mode):
    for var in ("WANDB_MODE", "WANDB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert wandb_mode(offline) == mode


def test_the_wandb_logger_passes_the_mode_and_leaves_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "online")
    lg = wandb_logger(project="p", save_dir=str(tmp_path))
    assert lg._wandb_init["mode"] == "online" and lg._offline is False


def test_wandb_config_reads_wandb_project(monkeypatch, tmp_path):
    from flipsketch.training.task import compose_train

    monkeypatch.setenv("WANDB_PROJECT", "mine")
    cfg = compose_train(["logger=wandb"], out_dir=tmp_path)
    assert cfg.logger.wandb.project == "mine" and cfg.logger.wandb.offline is None


def test_tensorboard_missing_is_one_line(monkeypatch):
    monkeypatch.setattr(loggers, "tensorboard_available", lambda: False)
    with pytest.raises(UserError, match="needs the tensorboard package"):
        loggers.tensorboard_logger(save_dir=".")


def test_train_refuses_tensorboard_before_starting(monkeypatch, tmp_path, capsys):
    from flipsketch.train import main

    monkeypatch.setattr(loggers, "tensorboard_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        main(["experiment=tiny_smoke", "logger=tensorboard", f"paths.log_dir={tmp_path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "tensorboard" in err[0] and not any(tmp_path.iterdir())
