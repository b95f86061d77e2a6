"""Every config group of train.yaml composes, and instantiates for the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import OmegaConf

from flipsketch.cli import CONF_DIR, compose_config
from flipsketch.training.builders import build_run, instantiate_group
from flipsketch.training.task import compose_train
from tests.helpers import fast_overrides


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


def test_the_groups_exist():
    assert {"default", "cpu", "gpu", "ddp", "cpu_ddp", "slurm"} <= set(options("trainer"))
    assert {"default", "none", "model_checkpoint", "sample_videos"} <= set(options("callbacks"))
    assert {"tiny_smoke", "paper_lora"} <= set(options("experiment"))
    assert "sketch_clips" in options("data")


def test_default_config_builds_everything_for_the_tiny_model(dataset, tmp_path):
    run = build_run(compose_train([f"data.root={dataset}", "trainer.max_steps=1"], out_dir=tmp_path))
    assert run.components.name == "tiny"
    assert isinstance(run.trainer, pl.Trainer) and run.trainer.max_steps == 1
    kinds = {type(c).__name__ for c in run.callbacks}
    assert {"ModelCheckpoint", "SampleVideos"} <= kinds
    from pytorch_lightning.loggers import CSVLogger

    assert len(run.loggers) == 1 and isinstance(run.loggers[0], CSVLogger)  # ours continues on resume


@pytest.mark.parametrize("name", options("model"))
def test_model_options_compose(name, tmp_path):
    cfg = compose_train([f"model={name}"], out_dir=tmp_path)
    assert cfg.model.name == name and cfg.model._target_ == "flipsketch.models.build_model"


@pytest.mark.parametrize("name", options("trainer"))
def test_trainer_options_compose_and_instantiate(name, tmp_path, monkeypatch):
    for var in ("SLURM_JOB_NUM_NODES", "SLURM_NTASKS_PER_NODE", "SLURM_JOB_ID", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    cfg = compose_train([f"trainer={name}"], out_dir=tmp_path)
    assert cfg.trainer.use_distributed_sampler is False
    # on this CPU-only machine: keep the strategy and everything else, run it on the CPU
    node = OmegaConf.merge(cfg.trainer, {"accelerator": "cpu", "precision": "32-true"})
    if name in ("ddp", "slurm"):
        node.devices = 2
    trainer = instantiate(node, logger=False, enable_checkpointing=False)
    assert isinstance(trainer, pl.Trainer)
    if name in ("ddp", "cpu_ddp", "slurm"):
        assert type(trainer.strategy).__name__ == "DDPStrategy"
        assert trainer.strategy._ddp_kwargs.get("find_unused_parameters") is False
    if name == "cpu_ddp":
        assert trainer.num_devices == 2 and trainer.strategy._process_group_backend == "gloo"


def test_slurm_trainer_reads_the_allocation(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "2")
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "4")
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    cfg = compose_train(["trainer=slurm", "experiment=paper_lora"], out_dir=tmp_path)
    t = cfg.trainer
    assert (t.num_nodes, t.devices, t.accelerator, t.precision) == (2, 4, "gpu", "16-mixed")
    assert t.strategy._target_.endswith("DDPStrategy") and t.strategy.find_unused_parameters is False
    assert t.default_root_dir == str(tmp_path)  # the run folder, keyed by the job id:
    from flipsketch.train import resume_in_place  # stable across requeues, hpc checkpoints resume

    added = resume_in_place(["trainer=slurm", "experiment=paper_lora"])[-1]
    assert added == "hydra.run.dir=${paths.log_dir}/${task_name}/slurm/777"


@pytest.mark.parametrize("name", options("callbacks"))
def test_callback_options_instantiate(name, tmp_path):
    cfg = compose_train([f"callbacks={name}"], out_dir=tmp_path)
    callbacks = instantiate_group(cfg.callbacks, "callbacks")
    assert all(isinstance(c, pl.Callback) for c in callbacks)
    assert (len(callbacks) == 0) == (name == "none")


@pytest.mark.parametrize("name", options("logger"))
def test_logger_options_instantiate(name, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_train([f"logger={name}"], out_dir=tmp_path)
    from flipsketch.training.loggers import tensorboard_available

    if name == "tensorboard" and not tensorboard_available():  # an optional extra: refused in one line
        from flipsketch.errors import UserError

        with pytest.raises(UserError, match=r"pip install -e '\.\[tensorboard\]'"):
            instantiate_group(cfg.get("logger"), "logger")
        return
    loggers = instantiate_group(cfg.get("logger"), "logger")
    assert len(loggers) == (0 if name == "none" else 1)


@pytest.mark.parametrize("name", options("data"))
def test_data_options_instantiate(name, dataset, tmp_path):
    cfg = compose_train([f"data={name}", f"data.root={dataset}"], out_dir=tmp_path)
    dm = instantiate(cfg.data)
    assert isinstance(dm, pl.LightningDataModule)


def test_tiny_smoke_experiment(tmp_path):
    cfg = compose_train(["experiment=tiny_smoke"], out_dir=tmp_path)
    assert cfg.model.name == "tiny" and cfg.trainer.accelerator == "cpu" and cfg.trainer.max_steps <= 10
    assert cfg.data.root is None and cfg.data.generate.out == str(tmp_path / "dataset")


def test_paper_lora_experiment_has_the_paper_settings(tmp_path):
    cfg = compose_train(["experiment=paper_lora"], out_dir=tmp_path)
    assert cfg.model.name == "modelscope" and cfg.model.resolution == 256
    m = cfg.module
    assert m.lora.rank == 4 and m.optimizer.lr == 5e-6 and m.optimizer._target_ == "torch.optim.AdamW"
    assert m.optimizer._partial_ is True and m.lr_scheduler.kind == "constant"
    assert cfg.trainer.max_steps == 2500 and cfg.trainer.precision == "16-mixed"
    assert cfg.data.batch_size == 1 and cfg.data.num_frames == 8 and cfg.data.resolution == 256
    assert cfg.data.cache_latents is True


def test_debug_and_hparams_search_compose(tmp_path):
    cfg = compose_train(["debug=default"], out_dir=tmp_path)
    assert cfg.trainer.max_steps == 1 and not cfg.logger
    cfg = compose_config("train", ["hparams_search=lora_lr", "experiment=tiny_smoke"])
    assert cfg.optimized_metric == "val/loss"


TRAIN_EXPERIMENTS = ["tiny_smoke", "paper_lora"]  # conf/experiment/ also holds flipsketch-eval experiments


def test_every_train_experiment_composes_with_every_trainer(tmp_path):
    for exp in TRAIN_EXPERIMENTS:
        for trainer in options("trainer"):
            cfg = compose_train([f"experiment={exp}", f"trainer={trainer}"], out_dir=tmp_path)
            assert cfg.trainer._target_ == "pytorch_lightning.Trainer"


def test_fast_overrides_build(dataset, tmp_path):
    run = build_run(compose_train(fast_overrides(dataset, 2), out_dir=tmp_path))
    assert run.trainer.max_steps == 2 and not run.loggers
