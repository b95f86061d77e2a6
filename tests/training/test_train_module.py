"""The LoRA LightningModule: loss goes down, only LoRA trains, small checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from flipsketch.errors import UserError
from flipsketch.models import build_model
from flipsketch.training.builders import build_run
from flipsketch.training.task import compose_train
from tests.helpers import fast_overrides


def make_run(dataset, tmp_path, *extra, steps=4):
    return build_run(compose_train(fast_overrides(dataset, steps) + list(extra), out_dir=tmp_path))


def fixed_batch(run, size=2):
    run.datamodule.setup("fit")
    return next(iter(run.datamodule.train_dataloader()))


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(dataset, tmp_path):
    run = make_run(dataset, tmp_path, "module.optimizer.lr=5e-3", "module.lr_scheduler=null")
    module, batch = run.module, fixed_batch(run)
    module.train()
    opt = module.configure_optimizers()
    losses = []
    for _ in range(12):
        loss = module.diffusion_loss(batch, (0, 123))  # same noise and timesteps every step
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def test_only_lora_parameters_train_and_checkpoints_hold_only_them(dataset, tmp_path):
    run = make_run(dataset, tmp_path, "callbacks.model_checkpoint.every_n_train_steps=3", steps=3)
    before = {n: p.detach().clone() for n, p in run.module.named_parameters()}
    trainable = {n for n, p in run.module.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    run.trainer.fit(run.module, datamodule=run.datamodule)
    changed = {n for n, p in run.module.named_parameters() if not torch.equal(p, before[n])}
    assert changed <= trainable
    assert {n for n in trainable if "lora_B" in n} <= changed  # B starts at zero; all of them moved
    ckpt = torch.load(tmp_path / "checkpoints" / "step_000003.ckpt", map_location="cpu", weights_only=True)
    assert set(ckpt["state_dict"]) == trainable
    assert ckpt["optimizer_states"] and ckpt["flipsketch"]["lora"]["rank"] == 4
    assert ckpt["flipsketch"]["model"]["name"] == "tiny"
    assert (tmp_path / "checkpoints" / "step_000003.ckpt").stat().st_size < 2_000_000


def test_lora_targets_rank_and_text_encoder_switches(dataset, tmp_path):
    run = make_run(
        dataset,
        tmp_path,
        "module.lora.targets=temporal",
        "module.lora.rank=2",
        "module.lora.text_encoder=true",
    )
    m = run.module
    assert m.unet_lora_targets and all(
        "temp_attentions" in n or "transformer_in" in n for n in m.unet_lora_targets
    )
    assert m.text_encoder_lora_targets
    assert any(p.requires_grad for n, p in m.text_encoder.named_parameters() if "lora_" in n)
    a = next(p for n, p in m.unet.named_parameters() if "lora_A" in n)
    assert a.shape[0] == 2
    batch = fixed_batch(run)
    m.train()
    m.diffusion_loss(batch, (0, 1)).backward()
    assert all(p.grad is not None for p in m.lora_params())  # the text encoder LoRA gets gradients too


def test_activation_checkpointing_gives_the_same_gradients(dataset, tmp_path):
    grads = []
    for flag in ("false", "true"):
        run = make_run(dataset, tmp_path / flag, f"module.activation_checkpointing={flag}")
        run.module.train()
        run.module.diffusion_loss(fixed_batch(run), (0, 5)).backward()
        grads.append([p.grad.clone() for p in run.module.lora_params()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_offset_noise_and_caption_dropout_change_the_loss(dataset, tmp_path):
    run = make_run(dataset, tmp_path)
    batch = fixed_batch(run)
    m = run.module
    m.train()
    with torch.no_grad():
        plain = m.diffusion_loss(batch, (0, 9))
        m.noise_offset = 0.5
        offset = m.diffusion_loss(batch, (0, 9))
        m.noise_offset, m.caption_dropout = 0.0, 1.0
        dropped = m.diffusion_loss(batch, (0, 9))
        same = m.diffusion_loss(batch, (0, 9), captions=[""] * len(batch["caption"]))
    assert plain != offset and plain != dropped and dropped == same


def test_bf16_mixed_keeps_lora_fp32_with_a_half_precision_base(dataset, tmp_path):
    run = make_run(dataset, tmp_path, "trainer.precision=bf16-mixed", "module.frozen_dtype=bfloat16", steps=2)
    run.trainer.fit(run.module, datamodule=run.datamodule)
    m = run.module
    assert all(p.dtype == torch.float32 for p in m.lora_params())
    assert m.unet.conv_in.weight.dtype == torch.bfloat16
    assert torch.isfinite(torch.tensor(float(run.trainer.callback_metrics["train/loss"])))


def test_precisions_that_would_cast_lora_are_user_errors(dataset, tmp_path):
    run = make_run(dataset, tmp_path, "trainer.precision=bf16-true")
    with pytest.raises(UserError, match="16-mixed"):
        run.trainer.fit(run.module, datamodule=run.datamodule)
    run = make_run(dataset, tmp_path, "module.frozen_dtype=float16")
    with pytest.raises(UserError, match="mixed precision"):
        run.trainer.fit(run.module, datamodule=run.datamodule)


def test_the_module_receives_built_components(dataset, tmp_path):
    comps = build_model("tiny", seed=1)
    run = build_run(compose_train(fast_overrides(dataset), out_dir=tmp_path), components=comps)
    assert run.module.unet is comps.unet and run.components is comps


def _cos(progress: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize(
    "experiment, factors",
    [
        ("", {0: 1.0, 1: _cos(1 / 2500), 1250: 0.5, 2499: _cos(2499 / 2500)}),  # cosine over max_steps 2500
        ("paper_lora", {0: 1.0, 1: 1.0, 2499: 1.0}),  # constant
        # warmup 2, then cosine over the other 6 of 8 steps: the first step already trains (lr / 2)
        ("tiny_smoke", {0: 0.5, 1: 1.0, 2: 1.0, 4: _cos(2 / 6), 7: _cos(5 / 6)}),
        ("tiny_world_lora", {0: 1 / 20, 18: 19 / 20, 19: 1.0, 20: 1.0, 310: 0.5}),  # warmup 20 of 600
    ],
)
def test_the_lr_per_step_of_every_configured_schedule(experiment, factors):
    """The schedules of conf/, step by step (lr = the optimizer's lr x the factor). diffusers'
    get_scheduler has the same cosine and constant shapes but starts a warmup at lr 0 (tiny_smoke:
    0, lr/2 instead of lr/2, lr) and has no min_ratio floor, so the project keeps warmup_schedule."""
    from hydra.utils import instantiate

    from flipsketch.cli import compose_config

    cfg = compose_config("train", [f"experiment={experiment}"] if experiment else [])
    m = cfg.module
    opt = instantiate(m.optimizer)([torch.nn.Parameter(torch.zeros(1))])
    sched = instantiate(m.lr_scheduler)(opt, total_steps=m.lr_scheduler.total_steps or cfg.trainer.max_steps)
    seen = {}
    for step in range(max(factors) + 1):
        seen[step] = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
    want = {step: m.optimizer.lr * f for step, f in factors.items()}
    assert {step: seen[step] for step in factors} == pytest.approx(want, rel=1e-12, abs=1e-18)
