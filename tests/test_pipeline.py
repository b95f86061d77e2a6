"""FlipSketch sampling on the tiny model: mechanism, determinism, switches, call accounting."""

import numpy as np
import pytest
import torch
from PIL import Image

from flipsketch.alignment import align_frames
from flipsketch.config import SamplerConfig
from flipsketch.errors import UserError
from flipsketch.pipeline import FlipSketchPipeline

from .conftest import draw_sketch
from .helpers import measured_alignment_loss

FAST = dict(num_frames=4, num_inference_steps=4, tau1=2, tau2=3, align_iters=2, guidance_scale=5.0)


def cfg(**kw):
    return SamplerConfig.from_dict({**FAST, **kw})


@pytest.fixture(scope="module")
def pipe(fresh_tiny):
    return FlipSketchPipeline(fresh_tiny())  # its calls install processors: a model of its own


@pytest.fixture(scope="module")
def sketch():
    return draw_sketch(64)


def test_same_seed_same_bytes_and_seeds_differ(pipe, sketch):
    a = pipe(sketch, "a ball bouncing", seeds=[0, 1], config=cfg())
    b = pipe(sketch, "a ball bouncing", seeds=[0, 1], config=cfg())
    assert a.frames.shape == (2, 4, 64, 64, 3) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames[0], a.frames[1])
    one = pipe(sketch, "a ball bouncing", seeds=[1], config=cfg())
    assert torch.allclose(one.latents[0], a.latents[1], atol=1e-4)  # one generator per sample


def test_every_sample_starts_from_the_inverted_reference(pipe, sketch):
    out = pipe(sketch, "a ball bouncing", seeds=[3], config=cfg(align=False), output_type="latent")
    lat = pipe.prepare_latents(out.reference_latent, [3, 4], 4)
    assert torch.equal(lat[0, :, 0], out.reference_latent[0, :, 0])
    assert torch.equal(lat[1, :, 0], out.reference_latent[0, :, 0])
    assert not torch.equal(lat[0, :, 1], lat[1, :, 1])


def test_composition_runs_on_every_attn1_layer_and_changes_the_output(pipe, sketch):
    full = pipe(sketch, "a ball bouncing", seeds=[0], config=cfg(align=False))
    off = pipe(
        sketch,
        "a ball bouncing",
        seeds=[0],
        config=cfg(align=False, compose_spatial=False, compose_temporal=False),
    )
    layers = set(pipe.composed_layers)
    assert set(full.stats["composed_calls"]) == layers
    # composed once per step i <= tau2 on each layer (tau2=3 of 4 steps: 4 steps)
    assert all(v == 4 for v in full.stats["composed_calls"].values())
    assert off.stats["composed_calls"] == {}
    assert not torch.allclose(full.latents, off.latents, atol=1e-4)


def test_lambda_changes_the_output(pipe, sketch):
    lo = pipe(
        sketch, "a ball bouncing", seeds=[0], config=cfg(align=False, compose_spatial=False, lambda_=0.0)
    )
    hi = pipe(
        sketch, "a ball bouncing", seeds=[0], config=cfg(align=False, compose_spatial=False, lambda_=1.0)
    )
    assert not torch.equal(lo.latents, hi.latents)


def test_unet_calls_are_exactly_what_the_method_needs(pipe, sketch):
    c = cfg()
    out = pipe(sketch, "a ball bouncing", seeds=[0, 1], config=cfg(batch_streams=True))
    steps, tau1, tau2, iters = c.num_inference_steps, c.tau1, c.tau2, c.align_iters
    ref_calls = min(steps, max(tau2 + 1, tau1))
    expected = steps + steps + ref_calls + tau1 * (1 + iters)  # inversion + main + reference + alignment
    two_calls = pipe(sketch, "a ball bouncing", seeds=[0, 1], config=cfg(batch_streams=False))
    assert two_calls.stats["unet_calls"] == {"inversion": steps, "total": expected}
    # batched: at step 0 the reference video has N frames like the main stream: one call for both
    assert out.stats["unet_calls"] == {"inversion": steps, "total": expected - 1}
    assert out.stats["batched_steps"] == 1 and two_calls.stats["batched_steps"] == 0


def test_degenerate_reference_guidance_costs_frames_and_changes_nothing(pipe, sketch):
    ours = pipe(sketch, "a ball bouncing", seeds=[0], config=cfg(align=False))
    official = pipe(
        sketch, "a ball bouncing", seeds=[0], config=cfg(align=False, faithful={"reference_cfg_pass": True})
    )
    assert official.stats["unet_frames"] > ours.stats["unet_frames"]
    assert torch.allclose(ours.latents, official.latents, atol=1e-3)  # batch-2 float noise only


def test_alignment_lowers_its_own_loss(pipe, sketch, tiny):
    out = pipe(sketch, "a ball bouncing", seeds=[0], config=cfg(align_iters=4))
    first_step = out.stats["align_losses"][0]
    assert len(first_step) == 4 and first_step[-1] < first_step[0]
    unet = pipe.c.unet
    g = torch.Generator().manual_seed(0)
    lat = torch.randn(1, 4, 4, 8, 8, generator=g)
    ref = torch.randn(1, 4, 1, 8, 8, generator=g)
    emb = pipe.encode_prompt(["a ball bouncing", ""])
    before = measured_alignment_loss(unet, lat, ref, 900, emb[:1], emb[1:])
    res = align_frames(unet, lat, ref, 900, emb[:1], emb[1:], iters=5, lr=1e-2)
    after = measured_alignment_loss(unet, res.latents, ref, 900, emb[:1], emb[1:])
    assert after < before
    assert torch.equal(res.latents[:, :, 0:1], ref)  # frame 0 is the reference, not optimised


def test_alignment_checkpointing_gives_identical_updates(pipe):
    unet = pipe.c.unet
    g = torch.Generator().manual_seed(5)
    lat, ref = torch.randn(1, 4, 3, 8, 8, generator=g), torch.randn(1, 4, 1, 8, 8, generator=g)
    emb = pipe.encode_prompt(["x", ""])
    a = align_frames(unet, lat, ref, 700, emb[:1], emb[1:], iters=2, checkpointing=True)
    b = align_frames(unet, lat, ref, 700, emb[:1], emb[1:], iters=2, checkpointing=False)
    assert torch.allclose(a.latents, b.latents, atol=1e-6)
    assert all(p.grad is None for p in unet.parameters())  # the UNet is frozen: nothing accumulates


def test_faithful_alignment_switches(pipe):
    unet = pipe.c.unet
    g = torch.Generator().manual_seed(2)
    lat, ref = torch.randn(1, 4, 3, 8, 8, generator=g), torch.randn(1, 4, 1, 8, 8, generator=g)
    emb = pipe.encode_prompt(["x", ""])
    args = (unet, lat, ref, 800, emb[:1], emb[1:])
    fp32 = align_frames(*args, iters=3)
    bf16 = align_frames(*args, iters=3, variable_dtype=torch.bfloat16)
    moved32 = (fp32.latents[:, :, 1:] - lat[:, :, 1:]).abs()
    moved16 = (bf16.latents[:, :, 1:] - lat[:, :, 1:].bfloat16().float()).abs()
    assert (moved16 == 0).float().mean() > (moved32 == 0).float().mean()  # bf16 cannot move most values
    dropped = align_frames(*args, iters=3, drop_last_update=True)
    two = align_frames(*args, iters=2)
    assert len(dropped.losses) == 3 and torch.equal(dropped.latents, two.latents)


def test_faithful_input_range_and_posterior_sampling(pipe, sketch):
    ours = pipe.encode_sketch(sketch, cfg(), seed=0)
    r01 = pipe.encode_sketch(sketch, cfg(faithful={"input_range_01": True}), seed=0)
    post = pipe.encode_sketch(sketch, cfg(faithful={"posterior_sample_avg": True}), seed=0)
    assert ours.shape == (1, 4, 1, 8, 8) and post.shape == (1, 4, 5, 8, 8)
    assert not torch.allclose(ours, r01)
    assert not torch.allclose(post[:, :, 0], post[:, :, 1])  # five different posterior samples
    assert torch.equal(post, pipe.encode_sketch(sketch, cfg(faithful={"posterior_sample_avg": True}), seed=0))


def test_plain_text_to_video_needs_no_sketch(pipe):
    out = pipe(None, "a ball bouncing", seeds=[0], config=cfg(reference_frame=False))
    assert out.frames.shape == (1, 4, 64, 64, 3)
    assert out.stats["unet_calls"]["total"] == 4 and out.reference_latent is None


@pytest.mark.parametrize(
    "kw, msg",
    [({"prompt": "  "}, "prompt"), ({"seeds": []}, "seeds"), ({"seeds": [-1]}, "seeds")],
)
def test_bad_call_arguments(pipe, sketch, kw, msg):
    args = {"sketch": sketch, "prompt": "a ball", "seeds": [0], "config": cfg(), **kw}
    with pytest.raises(UserError, match=msg):
        pipe(**args)


@pytest.mark.parametrize(
    "over, msg",
    [
        ({"num_frames": 1}, "num_frames"),
        ({"lambda_": 1.5}, "lambda_"),
        ({"tau2": 99}, "tau2"),
        ({"lambda_mode": "logits"}, "lambda_mode"),
        ({"bogus": 1}, "unknown"),
    ],
)
def test_out_of_range_knobs(over, msg):
    with pytest.raises(UserError, match=msg):
        SamplerConfig.from_dict({**FAST, **over})


def test_image_input_variants(tmp_path):
    from flipsketch.sketch import load_sketch

    rgba = Image.new("RGBA", (80, 40), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (10, 10, 30, 30))
    rgba.save(tmp_path / "a.png")
    img = np.asarray(load_sketch(tmp_path / "a.png", 64))
    assert img.shape == (64, 64, 3)
    assert img[0, 0].tolist() == [255, 255, 255]  # transparent -> white; padding is white
    assert img.min() < 50  # the opaque black square survives
    squashed = np.asarray(load_sketch(tmp_path / "a.png", 64, squash=True))
    assert not np.array_equal(img, squashed)
    Image.new("1", (50, 50), 1).save(tmp_path / "b.bmp")
    assert np.asarray(load_sketch(tmp_path / "b.bmp", 32)).shape == (32, 32, 3)
    draw_sketch(70).convert("L").save(tmp_path / "c.png")
    (tmp_path / "c.png").rename(tmp_path / "c.jpg")  # the extension lies
    assert np.asarray(load_sketch(tmp_path / "c.jpg", 32)).min() < 128
    Image.new("L", (6000, 6000), 255).save(tmp_path / "big.png")
    assert load_sketch(tmp_path / "big.png", 64).size == (64, 64)
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(UserError, match="cannot read"):
        load_sketch(tmp_path / "bad.png", 64)


@pytest.mark.parametrize(
    "mode",
    ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "HSV", "LAB"]
    + ["I", "I;16", "I;16B", "F"],
)
def test_every_image_mode_loads_as_the_drawing(tmp_path, mode):
    """A black line on white comes back as a black line on white, whatever PIL mode holds it
    (a 16-bit greyscale PNG used to load as a blank white image)."""
    from flipsketch.sketch import load_sketch, to_rgb_on_white

    grey = np.full((48, 48), 255, np.uint8)
    grey[20:28, 4:44] = 0
    if mode in ("I;16", "I;16B"):
        img = Image.frombytes(
            mode,
            (48, 48),
            (grey.astype(np.uint16) * 257).astype(">u2" if mode == "I;16B" else "<u2").tobytes(),
        )
    elif mode == "I":
        img = Image.fromarray(grey.astype(np.int32) * 257)  # 16-bit values in a 32-bit image
    elif mode == "F":
        img = Image.fromarray(grey.astype(np.float32) / 255.0)  # floats in [0, 1]
    elif mode == "La":
        la = np.stack([np.zeros_like(grey), 255 - grey], -1)  # premultiplied: ink where alpha is
        img = Image.frombytes("La", (48, 48), la.tobytes())
    else:
        img = Image.fromarray(grey).convert("RGB").convert(mode)
    rgb = np.asarray(to_rgb_on_white(img)).astype(int)
    assert rgb[24, 24].max() < 40 and rgb[5, 5].min() > 215, (mode, rgb[24, 24], rgb[5, 5])
    if mode == "I;16":  # the file path too: a 16-bit greyscale PNG
        img.save(tmp_path / "g16.png")
        assert Image.open(tmp_path / "g16.png").mode == "I;16"
        loaded = np.asarray(load_sketch(tmp_path / "g16.png", 48))
        assert loaded[24, 24].max() < 40 and loaded[5, 5].min() > 215


def test_block_checkpointing_context_leaves_an_earlier_wrapping_in_place(tiny):
    from flipsketch.models.activation_checkpointing import (
        block_checkpointing,
        disable_block_checkpointing,
        enable_block_checkpointing,
        is_block_checkpointing,
    )

    unet = tiny.unet
    with block_checkpointing(unet):
        assert is_block_checkpointing(unet)
    assert not is_block_checkpointing(unet)
    enable_block_checkpointing(unet)
    try:
        with block_checkpointing(unet):
            pass
        assert is_block_checkpointing(unet)  # a trainer's wrapping survives sampling with alignment
    finally:
        disable_block_checkpointing(unet)
    assert not is_block_checkpointing(unet)


# ---------------------------------------------------------------- tau follows the step count
@pytest.mark.parametrize(
    "over, taus",
    [
        ({}, (10, 15)),  # the paper: 10 and 15 of 25 steps
        ({"num_inference_steps": 10}, (4, 6)),
        ({"num_inference_steps": 4}, (2, 2)),
        ({"num_inference_steps": 1}, (0, 1)),
        ({"num_inference_steps": 50}, (20, 30)),
        ({"num_inference_steps": 4, "tau1": 3}, (3, 2)),  # an explicit integer is an absolute step
        ({"tau1": None, "tau2": 7}, (10, 7)),
    ],
)
def test_tau_scales_with_the_steps_unless_set(over, taus):
    assert SamplerConfig.from_dict(over).resolved_taus() == taus


def test_default_tau_runs_at_any_step_count_and_is_recorded(pipe, sketch):
    c = SamplerConfig(num_frames=3, align_iters=1)  # tau1/tau2 unset
    out = pipe(sketch, "a ball", seeds=[0], config=c, num_inference_steps=4, output_type="latent")
    assert out.stats["tau"] == {"tau1": 2, "tau2": 2}
    assert len(out.stats["align_losses"]) == 2  # alignment at steps i < tau1
    t2v = pipe(None, "a ball", seeds=[0], config=cfg(reference_frame=False, tau1=99), output_type="latent")
    assert t2v.stats["tau"] is None  # plain text-to-video neither checks nor uses tau
    with pytest.raises(UserError, match="tau1"):
        SamplerConfig.from_dict({"num_inference_steps": 4, "tau1": 5})
    with pytest.raises(UserError, match="sampler.tau2 must be an integer"):
        SamplerConfig.from_dict({"tau2": "abc"})


# ---------------------------------------------------------------- precision of the alignment gradient
def test_alignment_gradient_in_float32_and_bfloat16(tiny):
    """On a GPU dtype=auto is bf16; alignment backpropagates through the UNet without loss scaling.
    The gradient on the frames is finite, nonzero and points the same way in both dtypes (CPU)."""
    import copy

    from .helpers import alignment_gradient

    g = torch.Generator().manual_seed(4)
    lat, ref = torch.randn(1, 4, 4, 8, 8, generator=g), torch.randn(1, 4, 1, 8, 8, generator=g)
    p32 = FlipSketchPipeline(copy.deepcopy(tiny))
    emb = p32.encode_prompt(["a ball bouncing", ""])
    grads = {}
    for dtype in (torch.float32, torch.bfloat16):
        unet = copy.deepcopy(p32.c.unet).to(dtype)
        loss, grad = alignment_gradient(unet, lat, ref, 800, emb[:1], emb[1:])
        assert grad.dtype == torch.float32 and grad.shape == (1, 4, 3, 8, 8)
        assert np.isfinite(loss) and loss > 0
        assert torch.isfinite(grad).all() and grad.abs().max() > 0
        grads[dtype] = grad.flatten()
    cos = torch.nn.functional.cosine_similarity(grads[torch.float32], grads[torch.bfloat16], dim=0)
    assert cos > 0.9, float(cos)


# ---------------------------------------------------------------- frame 0 from the reference stream
def test_output_reference_frame0_is_the_decoded_reference_stream(pipe, sketch):
    c = dict(align=False, tau1=1, tau2=1)  # reference stream until step 1: 2 extra single-frame steps
    plain = pipe(sketch, "a ball", seeds=[0, 1], config=cfg(**c))
    ref0 = pipe(sketch, "a ball", seeds=[0, 1], config=cfg(**c, output_reference_frame0=True))
    z = ref0.reference_stream_latent
    assert z.shape == (1, 4, 1, 8, 8)
    assert torch.equal(ref0.latents[:, :, :1], z.expand(2, -1, -1, -1, -1))
    # decoded alone (batch 1) vs in the batch of 2: float rounding may move a pixel by one level
    alone = np.repeat(pipe.decode_latents(z)[:, 0], 2, axis=0).astype(int)
    assert np.abs(ref0.frames[:, 0].astype(int) - alone).max() <= 1
    # frames 1.. are the main stream's, unchanged
    assert torch.equal(ref0.latents[:, :, 1:], plain.latents[:, :, 1:])
    extra = 4 - 2  # steps 2 and 3: one call of one frame each
    assert ref0.stats["unet_calls"]["total"] == plain.stats["unet_calls"]["total"] + extra
    assert ref0.stats["unet_frames"] == plain.stats["unet_frames"] + extra


# ---------------------------------------------------------------- caller latents
def test_caller_latents_get_the_reference_in_frame0(pipe, sketch):
    noise = pipe.prepare_latents(None, [0], 4)  # the seeded noise, frame 0 included
    seeded = pipe(sketch, "a ball", seeds=[0], config=cfg(), output_type="latent")
    given = pipe(sketch, "a ball", seeds=[7], config=cfg(), latents=noise, output_type="latent")
    assert torch.equal(given.latents, seeded.latents)  # frame 0 masked in; seeds only label samples
    assert noise[0, 0, 0].abs().sum() > 0 and not torch.equal(noise[:, :, :1], seeded.reference_latent)
    t2v = pipe(
        None, "a ball", seeds=[0], config=cfg(reference_frame=False), latents=noise, output_type="latent"
    )
    plain = pipe(None, "a ball", seeds=[0], config=cfg(reference_frame=False), output_type="latent")
    assert torch.equal(t2v.latents, plain.latents)  # no reference: the caller's latents whole
    with pytest.raises(UserError, match="latents must have shape"):
        pipe(sketch, "a ball", seeds=[0, 1], config=cfg(), latents=noise)
