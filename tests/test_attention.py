"""Dual attention composition: hand-computed attention on small tensors, and processors that run."""

import math

import pytest
import torch
import torch.nn.functional as F

from flipsketch.attention import (
    CompositionController,
    compose_spatial_query,
    install_composition,
    layer_kind,
    temporal_composed_attention,
)


def test_layer_kinds_from_processor_names(tiny):
    kinds = {n: layer_kind(n) for n in tiny.unet.attn_processors}
    assert kinds["transformer_in.transformer_blocks.0.attn1.processor"] == "temporal"
    assert kinds["down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor"] == "spatial"
    assert kinds["down_blocks.0.temp_attentions.0.transformer_blocks.0.attn1.processor"] == "temporal"
    assert kinds["mid_block.attentions.0.transformer_blocks.0.attn1.processor"] == "spatial"
    assert all(v is None for n, v in kinds.items() if ".attn2." in n)
    assert all(v is not None for n, v in kinds.items() if ".attn1." in n)


def test_spatial_query_swap_matches_hand_computation():
    btot, frames, length, ch = 4, 3, 5, 6  # [uncond0, uncond1, cond0, cond1]
    q = torch.randn(btot * frames, length, ch)
    q_ref = torch.randn(2, length, ch)  # 2 reference copies
    out = compose_spatial_query(q, q_ref, frames, cond_start=2).view(btot, frames, length, ch)
    qv = q.view(btot, frames, length, ch)
    for b in range(btot):
        for f in range(frames):
            expected = q_ref[f] if (b >= 2 and f < 2) else qv[b, f]
            assert torch.equal(out[b, f], expected)


def _manual_temporal(q, k, v, k_ref0, heads, lam, denom, mode="logit"):
    rows, frames, inner = q.shape
    d = inner // heads
    positions = k_ref0.shape[0]
    out = torch.zeros_like(q)
    for r in range(rows):
        p = r % positions
        for h in range(heads):
            sl = slice(h * d, (h + 1) * d)
            for j in range(frames):
                logits = []
                for m in range(frames):
                    if m == 0:
                        val = float(q[r, j, sl] @ k_ref0[p, sl]) / math.sqrt(d)
                        factor = 1 + lam * j / denom
                        val = val * factor if mode == "logit" else val + math.log(factor)
                    else:
                        val = float(q[r, j, sl] @ k[r, m, sl]) / math.sqrt(d)
                    logits.append(val)
                w = torch.softmax(torch.tensor(logits, dtype=torch.float64), 0)
                out[r, j, sl] = sum(w[m] * v[r, m, sl].double() for m in range(frames)).float()
    return out


@pytest.mark.parametrize(
    ("mode", "lam", "denom"),
    [
        ("logit", 0.0, 50.0),
        ("logit", 0.5, 50.0),
        ("logit", 1.0, 50.0),
        ("weight", 1.0, 5.0),
        ("weight", 3.0, 5.0),
    ],
)
def test_temporal_key_swap_matches_hand_computation(mode, lam, denom):
    torch.manual_seed(0)
    positions, batch, frames, heads, d = 3, 2, 4, 2, 4
    q, k, v = (torch.randn(batch * positions, frames, heads * d) * 2 for _ in range(3))
    k_ref0 = torch.randn(positions, heads * d) * 2
    got = temporal_composed_attention(q, k, v, k_ref0, heads, d**-0.5, lam, denom, mode)
    want = _manual_temporal(q, k, v, k_ref0, heads, lam, denom, mode=mode)
    assert torch.allclose(got, want, atol=1e-5)


def _frame0_weight(ref_sign: float, lam: float, mode: str) -> float:
    """Attention weight of key frame 0 for query frame 4, read off a one-hot value on frame 0."""
    q = torch.ones(1, 5, 4)
    k = torch.zeros(1, 5, 4)
    v = torch.zeros(1, 5, 4)
    v[0, 0, 0] = 1.0
    k_ref0 = torch.full((1, 4), ref_sign)
    return float(temporal_composed_attention(q, k, v, k_ref0, 1, 0.5, lam, 5.0, mode)[0, 4, 0])


def test_lambda_modes_on_a_negative_reference_logit():
    # the official factor multiplies the logit: a negative logit gets more negative, frame 0 LESS weight
    assert _frame0_weight(-1.0, 1.0, "logit") < _frame0_weight(-1.0, 0.0, "logit")
    # weight mode: frame 0's weight times the factor, then renormalised, whatever the logit's sign
    for sign in (-1.0, 1.0):
        w0, w1 = _frame0_weight(sign, 0.0, "weight"), _frame0_weight(sign, 1.0, "weight")
        factor = 1 + 1.0 * 4 / 5.0
        assert w1 / (1 - w1) == pytest.approx(factor * w0 / (1 - w0), rel=1e-5)


def test_unknown_lambda_mode_is_refused():
    q = torch.ones(1, 3, 2)
    with pytest.raises(ValueError, match="lambda_mode"):
        temporal_composed_attention(q, q, q, torch.ones(1, 2), 1, 1.0, 0.5, 50.0, "bogus")


def test_temporal_lambda_raises_weight_on_frame_zero():
    torch.manual_seed(1)
    q = torch.ones(1, 5, 4)
    k = torch.zeros(1, 5, 4)
    v = torch.eye(5)[None, :, :4].clone()
    v[0, 0] = torch.tensor([1.0, 0, 0, 0])
    k_ref0 = torch.ones(1, 4)
    w = [temporal_composed_attention(q, k, v, k_ref0, 1, 0.5, lam, 50.0)[0, 4, 0] for lam in (0.0, 1.0)]
    assert w[1] > w[0]  # positive logit scaled by (1 + lambda*j/50): more weight on frame 0


def _run(unet, ctl, x, t, emb, mode, **kw):
    ctl.set_mode(mode, **kw)
    with torch.no_grad():
        return unet(x, t, encoder_hidden_states=emb).sample


def test_processors_run_save_and_compose_and_change_the_output(tiny):
    unet = tiny.unet
    ctl = CompositionController(lambda_=0.5)
    kinds = install_composition(unet, ctl)
    try:
        g = torch.Generator().manual_seed(0)
        ref = torch.randn(1, 4, 1, 8, 8, generator=g)
        main = torch.randn(2, 4, 4, 8, 8, generator=g)
        emb = torch.randn(2, 77, 32, generator=g)
        plain = _run(unet, ctl, main, 500, emb, "off")
        _run(
            unet,
            ctl,
            ref.expand(-1, -1, 3, -1, -1),
            500,
            emb[:1],
            "save",
            num_frames=3,
            cond_start=0,
        )
        assert set(ctl.saves) == set(kinds)  # every attn1 layer saved its query and key
        composed = _run(unet, ctl, main, 500, emb, "compose", num_frames=4, cond_start=1)
        assert set(ctl.composes) == set(kinds)  # ... and every one composed
        assert torch.equal(composed[0], plain[0])  # unconditional half untouched
        assert not torch.allclose(composed[1], plain[1], atol=1e-4)
        for flags in ((True, False), (False, True)):
            ctl.spatial, ctl.temporal = flags
            ctl.reset_counters()
            only = _run(unet, ctl, main, 500, emb, "compose", num_frames=4, cond_start=1)
            want = "spatial" if flags[0] else "temporal"
            assert {kinds[n] for n in ctl.composes} == {want}
            assert not torch.allclose(only[1], plain[1], atol=1e-5)
    finally:
        from .helpers import remove_composition

        remove_composition(unet)


def test_off_mode_equals_default_processors(tiny):
    unet = tiny.unet
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 3, 8, 8, generator=g)
    e = torch.randn(1, 77, 32, generator=g)
    with torch.no_grad():
        base = unet(x, 300, encoder_hidden_states=e).sample
    ctl = CompositionController()
    install_composition(unet, ctl)
    try:
        assert torch.allclose(_run(unet, ctl, x, 300, e, "off"), base, atol=1e-6)
    finally:
        from .helpers import remove_composition

        remove_composition(unet)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_one_token_attention_is_its_value(dtype):
    """The one-token shortcut (CompositionController.single_token_shortcut): over one key the
    attention kernel returns the value bit for bit (the softmax of one logit is exactly 1)."""
    g = torch.Generator().manual_seed(0)
    for shape in [(64, 4, 1, 8), (128, 8, 1, 64), (3, 1, 1, 5)]:
        q, k, v = (torch.randn(shape, generator=g).mul(10).to(dtype) for _ in range(3))
        for scale in (None, 0.35):
            assert torch.equal(F.scaled_dot_product_attention(q, k, v, scale=scale), v)
