"""Speed work on the sampler: both streams in one UNet call where frame counts are equal, the
composition processors installed for a call only, and the GPU check script (CPU, tiny settings)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from flipsketch.attention import CompositionProcessor
from flipsketch.config import SamplerConfig
from flipsketch.pipeline import FlipSketchPipeline

from .conftest import draw_sketch

FAST = dict(num_frames=4, num_inference_steps=4, tau1=2, tau2=2, align_iters=2, guidance_scale=5.0)


@pytest.fixture(scope="module")
def tiny64(tiny):
    return copy.deepcopy(tiny).to(dtype=torch.float64)


def _pair(comps, **over):
    """The same sample through two calls per step and through one batched call."""
    sketch = draw_sketch(64)
    outs = []
    for batched in (False, True):
        cfg = SamplerConfig.from_dict({**FAST, **over, "batch_streams": batched})
        outs.append(FlipSketchPipeline(comps, cfg)(sketch, "a ball", seeds=[0, 1], output_type="latent"))
    return outs


@pytest.mark.parametrize(
    "over",
    [
        {},  # alignment, composition, the reference video decaying: batched at step 0
        {"reference_decay": False, "align": False, "tau2": 4},  # every step batched
        pytest.param(  # slow: the two cases above batch the same calls in the fast suite
            {"reference_decay": False, "faithful": {"reference_cfg_pass": True, "reference_video": True}},
            marks=pytest.mark.slow,
        ),
        pytest.param(
            {"compose_spatial": False, "lambda_": 1.0, "reference_decay": False}, marks=pytest.mark.slow
        ),
    ],
)
def test_batched_streams_equal_two_calls_in_float64(tiny64, over):
    two, one = _pair(tiny64, **over)
    assert float((two.latents - one.latents).abs().max()) < 1e-10
    assert one.stats["batched_steps"] >= 1 and two.stats["batched_steps"] == 0
    assert one.stats["composed_calls"] == two.stats["composed_calls"]


def test_batched_streams_halve_the_calls_of_composing_steps(tiny):
    over = {"reference_decay": False, "align": False, "tau2": 4}  # the reference stream at all 4 steps
    two, one = _pair(tiny, **over)
    steps = FAST["num_inference_steps"]
    assert two.stats["unet_calls"] == {"inversion": steps, "total": steps + 2 * steps}
    assert one.stats["unet_calls"] == {"inversion": steps, "total": steps + steps}  # 2 -> 1 per step
    assert one.stats["unet_frames"] == two.stats["unet_frames"]  # the same work, fewer launches
    # float32: one denoising step agrees within 1e-5 (over many steps guidance amplifies float noise)
    two1, one1 = _pair(tiny, **{**over, "num_inference_steps": 1, "tau1": 1, "tau2": 1})
    assert float((two1.latents - one1.latents).abs().max()) < 1e-5


def test_processors_are_installed_for_a_call_only(tiny):
    unet = tiny.unet
    before = unet.attn_processors
    pipe = FlipSketchPipeline(tiny, SamplerConfig.from_dict(FAST))
    assert all(unet.attn_processors[k] is before[k] for k in before)  # construction changes nothing
    seen = {}

    def spy(module, args):
        seen.update({n: p for n, p in unet.attn_processors.items() if isinstance(p, CompositionProcessor)})

    h = unet.register_forward_pre_hook(spy)
    try:
        pipe(draw_sketch(64), "a ball", seeds=[0], output_type="latent")
    finally:
        h.remove()
    assert set(seen) == set(pipe.composed_layers) and len(seen) > 0  # composed during the call
    assert all(unet.attn_processors[k] is before[k] for k in before)  # and put back after
    with pytest.raises(RuntimeError):  # put back when a call fails half-way too
        with pipe.composition():
            assert isinstance(unet.attn_processors[next(iter(pipe.composed_layers))], CompositionProcessor)
            raise RuntimeError("boom")
    assert all(unet.attn_processors[k] is before[k] for k in before)


def _device_check(tmp_path, *args):
    import importlib.util

    from .conftest import REPO

    spec = importlib.util.spec_from_file_location("device_check", REPO / "experiments" / "device_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--out", str(tmp_path), "--device", "cpu", "--tiny", *args]) == 0
    return json.loads((tmp_path / "results.json").read_text()), (tmp_path / "results.md").read_text()


@pytest.mark.slow  # about 15 s: builds the tiny model, warms up, samples once
def test_device_check_budget_guard_keeps_what_ran(tmp_path):
    data, md = _device_check(tmp_path, "--budget-s", "0")
    assert [r["variant"] for r in data["sampling"]] == ["plain text-to-video"]  # the first always runs
    assert len(data["notes"]) == len(data["sampling"]) + 4 + 2 - 1  # 4 variants + 2 training steps skipped
    assert all("skipped" in n for n in data["notes"]) and "skipped" in md


@pytest.mark.slow
def test_device_check_runs_on_cpu_with_tiny_settings(tmp_path):
    data, md = _device_check(tmp_path, "--train-steps", "1")
    rows = {r["variant"]: r for r in data["sampling"]}
    assert len(rows) == 5 and not data["notes"]
    assert rows["plain text-to-video"]["unet_calls"] == 4  # 4 steps, guidance in one call
    two, one = rows["flipsketch, align off"], rows["flipsketch, align off, batched"]
    assert one["unet_calls"] == two["unet_calls"] - 1 and one["unet_frames"] == two["unet_frames"]
    assert rows["paper alignment (10x)"]["unet_calls"] > rows["sampler=fast (align 1x)"]["unet_calls"]
    assert [r["checkpointing"] for r in data["training"]] == [False, True]
    assert all(r["step_s"] > 0 for r in data["training"])
    assert "| fp32 | paper alignment (10x) |" in md and "activation checkpointing" in md
    assert any("batched / two calls" in k for k in data["goals"])


REUSE = [
    ({}, "a ball", 0),
    ({"lambda_": 1.0}, "a ball", 1),  # another method, another seed: the same inversion and stream
    ({"align": False}, "a cat jumping", 0),  # another prompt: the stream is the empty prompt's
    ({"faithful": {"reference_video": True}}, "a ball", 0),  # another stream: computed afresh
]


def test_sketch_cache_outputs_are_bit_identical(tiny):
    """reuse=True computes the inversion, prompts and reference stream once per sketch, and every
    output equals a pipeline computing them afresh, bit for bit."""
    sketch = draw_sketch(64)
    fresh, reused = FlipSketchPipeline(tiny), FlipSketchPipeline(tiny, reuse=True)
    for over, prompt, seed in REUSE:
        cfg = SamplerConfig.from_dict({**FAST, "num_frames": 3, **over})
        a = fresh(sketch, prompt, seeds=[seed], config=cfg, output_type="latent")
        b = reused(sketch, prompt, seeds=[seed], config=cfg, output_type="latent")
        assert torch.equal(a.latents, b.latents), over
        assert torch.equal(a.reference_stream_latent, b.reference_stream_latent), over
        if over:
            assert b.stats["unet_calls"]["inversion"] == 0  # inverted once, for the first call
    hits = reused.cache.hits
    assert hits["inversions"] == len(REUSE) - 1
    assert hits["reference_steps"] > 0 and hits["prompts"] > 0


LEAN = [
    {},  # the defaults: alignment, composition, the reference video decaying to one frame
    {"align": False},
    {"faithful": {"reference_cfg_pass": True, "reference_video": True}},  # two reference entries
    {"batch_streams": True, "output_reference_frame0": True},
]


@pytest.mark.parametrize("over", LEAN)
def test_lean_calls_are_bit_identical(tiny, over):
    """lean_calls (the default): the UNet's dtype read once per call and one-token self-attention
    returning its value change no bit of a sample against the former path (lean_calls=False); the
    reference stream reaches one frame (3 frames, tau2 2), so saving one-frame layers is covered."""
    from diffusers.models.modeling_utils import ModelMixin

    sketch = draw_sketch(64)
    cfg = SamplerConfig.from_dict({**FAST, "num_frames": 3, **over})
    cls = type(tiny.unet)
    seen = []
    h = tiny.unet.register_forward_pre_hook(lambda m, a: seen.append(type(m).dtype is ModelMixin.dtype))
    try:
        old = FlipSketchPipeline(tiny, lean_calls=False)(sketch, "a ball", seeds=[0, 1], config=cfg)
        assert seen and all(seen)  # the former path: diffusers' dtype on every call
        seen.clear()
        new = FlipSketchPipeline(tiny)(sketch, "a ball", seeds=[0, 1], config=cfg)
        assert seen and not any(seen)  # lean: the dtype read once
    finally:
        h.remove()
    assert type(tiny.unet) is cls  # the class put back after the call
    assert torch.equal(old.latents, new.latents), over
    assert np.array_equal(old.frames, new.frames)
    assert torch.equal(old.reference_latent, new.reference_latent)
    assert torch.equal(old.reference_stream_latent, new.reference_stream_latent)
    assert old.stats["align_losses"] == new.stats["align_losses"]
    assert old.stats["composed_calls"] == new.stats["composed_calls"]
    assert old.stats["saved_calls"] == new.stats["saved_calls"]


def test_fixed_dtype_reads_once_and_puts_the_class_back(tiny):
    from flipsketch.models.fixed_dtype import fixed_dtype

    unet, cls = tiny.unet, type(tiny.unet)
    with fixed_dtype(unet):
        assert type(unet) is not cls and isinstance(unet, cls) and type(unet).__name__ == cls.__name__
        assert unet.dtype == torch.float32
        with fixed_dtype(unet):  # nested: nothing more
            assert unet.dtype == torch.float32
        assert type(unet) is not cls
    assert type(unet) is cls and unet.dtype == torch.float32
    with pytest.raises(RuntimeError), fixed_dtype(unet):
        raise RuntimeError("boom")
    assert type(unet) is cls and "_flipsketch_fixed_dtype" not in unet.__dict__
    plain = torch.nn.Linear(2, 2)
    with fixed_dtype(plain):  # not a diffusers model: left as it is
        assert type(plain) is torch.nn.Linear
