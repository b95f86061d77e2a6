"""The composition processors' wiring, pinned through a real diffusers `Attention` module in float64.

Save mode on a reference-stream call, then compose mode on a main-stream CFG call, compared with
attention written out by hand from the module's own projection weights (1e-12). Each of these
plausible slips fails a test here: C^S swapping the key instead of the query; C^T taking the last
reference frame's key instead of frame 0's; the value stored in place of the key; the composition
touching the unconditional half; λ's factor applied to the wrong frame axis.
"""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import Attention

from flipsketch.attention import CompositionController, CompositionProcessor

SPATIAL = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor"
TEMPORAL = "down_blocks.0.temp_attentions.0.transformer_blocks.0.attn1.processor"
CH, HEADS = 8, 2


def _attention(seed: int) -> Attention:
    torch.manual_seed(seed)
    attn = (
        Attention(query_dim=CH, heads=HEADS, dim_head=CH // HEADS, bias=False, out_bias=True).double().eval()
    )
    with torch.no_grad():  # non-trivial weights everywhere, the output bias included
        for p in attn.parameters():
            p.normal_(0.0, 0.7)
    return attn


def _heads(x: torch.Tensor) -> torch.Tensor:  # (rows, L, C) -> (rows, h, L, d)
    return x.view(x.shape[0], x.shape[1], HEADS, CH // HEADS).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:  # (rows, h, L, d) -> (rows, L, C)
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], CH)


def _by_hand(
    attn: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, logit_edit=None
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v per head, then to_out; `logit_edit(logits)` may change the logits."""
    logits = _heads(q) @ _heads(k).transpose(-1, -2) / (CH // HEADS) ** 0.5
    if logit_edit is not None:
        logits = logit_edit(logits)
    out = _merge(logits.softmax(-1) @ _heads(v))
    return out @ attn.to_out[0].weight.T + attn.to_out[0].bias


def _proj(attn: Attention, h: torch.Tensor):
    return h @ attn.to_q.weight.T, h @ attn.to_k.weight.T, h @ attn.to_v.weight.T


@pytest.mark.parametrize("copies", [1, 3])
def test_spatial_composition_swaps_the_query_of_conditional_frames_below_copies(copies):
    attn, ctl = _attention(0), CompositionController()
    attn.set_processor(CompositionProcessor(SPATIAL, "spatial", ctl))
    frames, length, b = 4, 5, 2  # CFG batch: [uncond0, uncond1, cond0, cond1]
    g = torch.Generator().manual_seed(1)
    ref = torch.randn(copies, length, CH, generator=g, dtype=torch.float64)
    main = torch.randn(2 * b * frames, length, CH, generator=g, dtype=torch.float64)

    ctl.set_mode("save", num_frames=copies, ref_batch=1)
    with torch.no_grad():
        attn(ref)
        q_ref = ref @ attn.to_q.weight.T
        ctl.set_mode("compose", num_frames=frames, cond_start=b)
        got = attn(main)
    assert ctl.saves[SPATIAL] == 1 and ctl.composes[SPATIAL] == 1

    q, k, v = _proj(attn, main)
    q = q.view(2 * b, frames, length, CH).clone()
    for e in range(b, 2 * b):  # conditional entries only
        for f in range(min(copies, frames)):
            q[e, f] = q_ref[f]  # the reference query of the SAME frame index; keys/values stay the main's
    want = _by_hand(attn, q.view(-1, length, CH), k, v)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # the unconditional half is exactly plain attention
    plain = _by_hand(attn, *_proj(attn, main[: b * frames]))
    torch.testing.assert_close(got[: b * frames], plain, rtol=0, atol=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_temporal_composition_uses_the_reference_key_of_frame_zero(lam):
    attn, ctl = _attention(2), CompositionController(lambda_=lam, lambda_denominator=50.0)
    attn.set_processor(CompositionProcessor(TEMPORAL, "temporal", ctl))
    positions, frames, copies, b = 3, 5, 4, 2
    g = torch.Generator().manual_seed(3)
    # reference stream: (positions, copies, C); frames of the reference video differ from each other
    ref = torch.randn(positions, copies, CH, generator=g, dtype=torch.float64)
    main = torch.randn(2 * b * positions, frames, CH, generator=g, dtype=torch.float64)

    ctl.set_mode("save", num_frames=copies, ref_batch=1)
    with torch.no_grad():
        attn(ref)
        ctl.set_mode("compose", num_frames=frames, cond_start=b)
        got = attn(main)
    assert ctl.composes[TEMPORAL] == 1

    k_ref0 = (
        ref[:, 0] @ attn.to_k.weight.T
    )  # (positions, C): frame 0's KEY (not its value, not the last frame)
    q, k, v = _proj(attn, main)
    start = b * positions
    j = torch.arange(frames, dtype=torch.float64)

    def edit(logits, qc=q[start:]):
        kr = k_ref0.repeat(b, 1)  # batch-major rows: entry e, position p -> row e * P + p
        ref_logit = (
            torch.einsum("nhjd,nhd->nhj", _heads(qc), kr.view(-1, HEADS, CH // HEADS)) / (CH // HEADS) ** 0.5
        )
        logits = logits.clone()
        logits[..., 0] = ref_logit * (1 + lam * j / 50.0)  # query frame j, key column 0
        return logits

    want_cond = _by_hand(attn, q[start:], k[start:], v[start:], edit)
    want_uncond = _by_hand(attn, q[:start], k[:start], v[:start])
    torch.testing.assert_close(got[start:], want_cond, rtol=0, atol=1e-12)
    torch.testing.assert_close(got[:start], want_uncond, rtol=0, atol=1e-12)


def test_the_wiring_tests_can_fail():
    """The hand computation really distinguishes the slips: each changes the result by far more than 1e-12."""
    attn = _attention(2)
    g = torch.Generator().manual_seed(3)
    ref = torch.randn(3, 4, CH, generator=g, dtype=torch.float64)
    q = torch.randn(3, 5, CH, generator=g, dtype=torch.float64)
    k_first = ref[:, 0] @ attn.to_k.weight.T
    k_last = ref[:, -1] @ attn.to_k.weight.T
    v_first = ref[:, 0] @ attn.to_v.weight.T
    logit = lambda kr: torch.einsum("nhjd,nhd->nhj", _heads(q), kr.view(-1, HEADS, CH // HEADS))  # noqa: E731
    assert (logit(k_first) - logit(k_last)).abs().max() > 1e-3
    assert (logit(k_first) - logit(v_first)).abs().max() > 1e-3


@pytest.mark.parametrize("kind, name", [("spatial", SPATIAL), ("temporal", TEMPORAL)])
@pytest.mark.parametrize("ref_batch", [1, 2])
def test_batched_call_equals_save_then_compose(kind, name, ref_batch):
    """One call holding [reference entries, uncond, cond] gives, row for row, what a save call
    followed by a compose call gives (float64, 1e-12); the reference rows attend plainly."""
    attn, ctl = _attention(4), CompositionController(lambda_=0.7)
    attn.set_processor(CompositionProcessor(name, kind, ctl))
    frames, length, b = 4, 5, 2
    g = torch.Generator().manual_seed(5)
    if kind == "spatial":  # rows (entries * frames, L, C)
        ref_entry = torch.randn(frames, length, CH, generator=g, dtype=torch.float64)
        main = torch.randn(2 * b * frames, length, CH, generator=g, dtype=torch.float64)
    else:  # rows (entries * positions, frames, C)
        ref_entry = torch.randn(length, frames, CH, generator=g, dtype=torch.float64)
        main = torch.randn(2 * b * length, frames, CH, generator=g, dtype=torch.float64)
    ref = torch.cat([ref_entry] * ref_batch)
    with torch.no_grad():
        ctl.set_mode("save", ref_batch=ref_batch)
        ref_alone = attn(ref)
        ctl.set_mode("compose", num_frames=frames, cond_start=b)
        two_calls = attn(main)
        ctl.store.clear()
        ctl.set_mode(
            "batched",
            num_frames=frames,
            cond_start=ref_batch + b,
            ref_batch=ref_batch,
            batch=ref_batch + 2 * b,
        )
        one_call = attn(torch.cat([ref, main]))
    rows = ref.shape[0]
    torch.testing.assert_close(one_call[:rows], ref_alone, rtol=0, atol=1e-12)
    torch.testing.assert_close(one_call[rows:], two_calls, rtol=0, atol=1e-12)
    assert ctl.composes[name] == 2 and ctl.saves[name] == 2
    ctl.set_mode("off")
    plain = attn(main)
    assert (
        plain[b * (frames if kind == "spatial" else length) :]
        - two_calls[b * (frames if kind == "spatial" else length) :]
    ).abs().max() > 1e-3


def test_save_keeps_only_what_the_composition_reads():
    """Spatial layers keep the reference query (frames, L, C); temporal layers frame 0's key (P, C),
    copied so that the reference call's tensors are freed."""
    ctl = CompositionController()
    sp, tp = _attention(0), _attention(1)
    sp.set_processor(CompositionProcessor(SPATIAL, "spatial", ctl))
    tp.set_processor(CompositionProcessor(TEMPORAL, "temporal", ctl))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, CH, generator=g, dtype=torch.float64)  # spatial: 3 frames; temporal: 3 positions
    ctl.set_mode("save", ref_batch=1)
    with torch.no_grad():
        sp(x)
        tp(x)
    assert ctl.store[SPATIAL].shape == (3, 5, CH)
    torch.testing.assert_close(ctl.store[SPATIAL], x @ sp.to_q.weight.T, rtol=0, atol=1e-12)
    assert ctl.store[TEMPORAL].shape == (3, CH)
    torch.testing.assert_close(ctl.store[TEMPORAL], x[:, 0] @ tp.to_k.weight.T, rtol=0, atol=1e-12)
    assert ctl.store[TEMPORAL].untyped_storage().nbytes() == 3 * CH * 8  # a copy, not a view of the key
