"""Experiment loggers built from conf/logger/*.yaml.

W&B follows its own environment variables: WANDB_MODE (online | offline | disabled), WANDB_PROJECT,
WANDB_ENTITY, WANDB_API_KEY, WANDB_RUN_GROUP, ... are read by wandb itself and never overridden here
(the run's files stay in the run folder, logger.wandb.save_dir, even when WANDB_DIR is set). Only when WANDB_MODE is unset does a run default to offline (the legacy
WANDB_OFFLINE=false turns that default online); `logger.wandb.offline=true|false` forces a mode.
TensorBoard needs the tensorboard package (`pip install -e '.[tensorboard]'`); without it the run is
refused in one line before anything starts."""

from __future__ import annotations

import importlib.util

from ..errors import UserError
from ..tracking import wandb_mode


def wandb_logger(offline=None, **kwargs):
    """Lightning's WandbLogger with the mode of `wandb_mode` (passed to wandb.init as `mode`)."""
    from pytorch_lightning.loggers.wandb import WandbLogger

    kwargs.pop("mode", None)
    # the mode goes to wandb.init; Lightning's own offline=True would set WANDB_MODE=dryrun in this
    # process's environment, which the next job of a sweep would inherit
    return WandbLogger(offline=False, mode=wandb_mode(offline), **kwargs)


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def check_tensorboard() -> None:
    if not tensorboard_available():
        raise UserError(
            "logger=tensorboard needs the tensorboard package: pip install -e '.[tensorboard]' "
            "(or use logger=csv or logger=wandb)"
        )


def tensorboard_logger(**kwargs):
    check_tensorboard()
    from pytorch_lightning.loggers.tensorboard import TensorBoardLogger

    return TensorBoardLogger(**kwargs)


def csv_logger(save_dir, name: str = "csv", version: int | str = 0, **kwargs):
    """Lightning's CSVLogger writing one `metrics.csv` per run folder that a resumed run continues
    (<run>/csv/version_0/metrics.csv; Lightning's own would start version_1/ beside it, or delete the
    file): the rows the resumed steps log again are dropped first (`ResumableCSV.resume_at`)."""
    from pytorch_lightning.loggers.csv_logs import CSVLogger, ExperimentWriter

    class AppendingWriter(ExperimentWriter):
        def _check_log_dir_exists(self) -> None:  # keep the earlier rows: the run continues
            import csv
            import os

            if os.path.isfile(self.metrics_file_path):
                with open(self.metrics_file_path, newline="", encoding="utf-8") as fh:
                    self.metrics_keys = list(csv.DictReader(fh).fieldnames or [])

        def resume_at(self, step: int) -> None:
            """Drop the rows logged at `step` or later (the steps a resumed run runs again)."""
            import csv
            import os

            if not os.path.isfile(self.metrics_file_path):
                return
            with open(self.metrics_file_path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                keys, rows = list(reader.fieldnames or []), list(reader)
            kept = [r for r in rows if not (r.get("step", "").isdigit() and int(r["step"]) >= step)]
            if len(kept) == len(rows):
                return
            with open(self.metrics_file_path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=keys)
                writer.writeheader()
                writer.writerows(kept)

    class ResumableCSV(CSVLogger):
        @property
        def experiment(self):
            if self._experiment is None:
                self._fs.makedirs(self.root_dir, exist_ok=True)
                self._experiment = AppendingWriter(log_dir=self.log_dir)
            return self._experiment

        def resume_at(self, step: int) -> None:
            self.experiment.resume_at(step)

    return ResumableCSV(save_dir=save_dir, name=name, version=version, **kwargs)
