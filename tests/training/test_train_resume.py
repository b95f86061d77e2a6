"""Exact resume: a killed run resumed from its checkpoint ends with the same LoRA
weights, bit for bit, as a run that was never interrupted (tiny model, CPU, fixed seed)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from flipsketch.training.builders import build_run
from flipsketch.training.task import compose_train
from tests.helpers import fast_overrides


class Killed(Exception):
    pass


class KillAt(pl.Callback):
    """Dies at the start of the step after `step` (its checkpoint is on disk by then), like a kill -9."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Killed


def fit(dataset, out, extra, ckpt_path=None, kill_at=None) -> dict[str, torch.Tensor]:
    run = build_run(compose_train(fast_overrides(dataset, steps=6) + extra, out_dir=out))
    if kill_at is not None:
        run.trainer.callbacks.insert(0, KillAt(kill_at))
    try:
        run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=ckpt_path)
    except Killed:
        assert run.trainer.global_step == kill_at
    return {k: v.detach().clone() for k, v in run.module.lora_state_dict().items()}


@pytest.mark.parametrize(
    "extra",
    [
        # dropout and caption dropout draw randomness every step; val runs between steps
        pytest.param(  # slow: the other case covers resume in the fast suite
            ["module.lora.dropout=0.1", "module.caption_dropout=0.3", "trainer.val_check_interval=2"],
            marks=pytest.mark.slow,
        ),
        # gradient accumulation, data-loader workers, cached latents, kill mid-way through a data epoch
        ["trainer.accumulate_grad_batches=2", "data.num_workers=2", "data.cache_latents=true"],
    ],
    ids=["dropout+val", "accumulate+workers+cache"],
)
def test_resumed_run_matches_the_uninterrupted_run_exactly(dataset, tmp_path, extra):
    extra = extra + ["callbacks.model_checkpoint.every_n_train_steps=3"]
    straight = fit(dataset, tmp_path / "straight", extra)
    killed = fit(dataset, tmp_path / "killed", extra, kill_at=3)
    ckpt = tmp_path / "killed" / "checkpoints" / "step_000003.ckpt"
    assert ckpt.is_file()
    resumed = fit(dataset, tmp_path / "resumed", extra, ckpt_path=str(ckpt))
    assert straight.keys() == resumed.keys() and len(straight) > 0
    assert any(not torch.equal(straight[k], killed[k]) for k in straight)  # the kill really cut it short
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


def test_checkpoint_rotation_keeps_the_newest(dataset, tmp_path):
    extra = ["callbacks.model_checkpoint.every_n_train_steps=1", "callbacks.model_checkpoint.save_top_k=2"]
    fit(dataset, tmp_path, extra)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert names == ["last.ckpt", "step_000005.ckpt", "step_000006.ckpt"]
