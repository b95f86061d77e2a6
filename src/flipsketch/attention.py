"""Dual attention composition (docs/METHOD.md section 3) as diffusers attention processors.

Every self-attention layer `attn1` of the UNet3D gets a `CompositionProcessor`; the layer kind is
read from the processor name (the only reliable way to tell layers apart):

* spatial  `...attentions.K.transformer_blocks.0.attn1`   sees (B*F, H*W, C)
* temporal `...temp_attentions.K...attn1`, `transformer_in...attn1`   sees (B*H*W, F, C)

An explicit `CompositionController` carries the state: in ``save`` mode (the reference stream) each
layer stores what the composition reads (a spatial layer its query, a temporal layer the key of
frame 0); in ``compose`` mode (the main stream) the conditional half of the batch is composed. In
``batched`` mode both streams share one UNet call (equal frame counts): the first ``ref_batch``
entries are the reference stream, attended plainly, and the conditional main entries are composed
with the reference entries' query and key of the same call, so nothing is stored:

* C^S (spatial): for frames f < copies, the query of frame f is the reference query of frame f;
  keys and values stay the main stream's own.
* C^T (temporal): logits L = Q K^T / sqrt(d); for each query frame j the logit against key frame 0
  becomes (Q_j . K_ref_0 / sqrt(d)) * (1 + lambda * j / lambda_denominator). Values unchanged.

Cross-attention (`attn2`) keeps diffusers' own processor. Attention runs through
`F.scaled_dot_product_attention` everywhere (C^S only swaps queries) except on the conditional rows
of composed temporal layers, whose logits C^T edits; those are (frames x frames) per position.
"""

from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .config import LAMBDA_MODES, SamplerConfig

MODES = ("off", "save", "compose", "batched")


def layer_kind(name: str) -> str | None:
    """'spatial', 'temporal' or None (not composed) from an attention processor name."""
    if ".attn1." not in name and not name.endswith(".attn1.processor"):
        return None
    if name.startswith("transformer_in.") or ".temp_attentions." in name:
        return "temporal"
    if ".attentions." in name:
        return "spatial"
    return None


_SAMPLER = SamplerConfig()


@dataclass
class CompositionController:
    """State shared by all composition processors of one UNet."""

    lambda_: float = _SAMPLER.lambda_  # the defaults are SamplerConfig's (set per sample by the pipeline)
    lambda_denominator: float = _SAMPLER.lambda_denominator
    lambda_mode: str = _SAMPLER.lambda_mode
    spatial: bool = _SAMPLER.compose_spatial
    temporal: bool = _SAMPLER.compose_temporal
    mode: str = "off"
    num_frames: int = 1  # frames of the video in the current UNet call (compose, batched)
    cond_start: int = 0  # batch index where the conditional main entries start (compose, batched)
    ref_batch: int = 1  # reference-stream entries (2 for the degenerate official CFG pass; save, batched)
    batch: int = 1  # entries in the whole call (batched)
    # self-attention over one token (a temporal layer on a one-frame video: inversion, the reference
    # stream's last steps) returns its value without the attention kernel: the softmax of one logit is
    # exactly 1, so the output is bit-identical (tests/test_attention.py checks the kernels)
    single_token_shortcut: bool = True
    # save mode: spatial layer -> its query (frames, L, C); temporal layer -> frame 0's key (P, C)
    store: dict[str, torch.Tensor] = field(default_factory=dict)
    saves: Counter = field(default_factory=Counter)
    composes: Counter = field(default_factory=Counter)

    def set_mode(self, mode: str, **kw) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        for k, v in kw.items():
            if not hasattr(self, k):
                raise AttributeError(k)
            setattr(self, k, v)
        if mode == "save":
            self.store.clear()

    def reset_counters(self) -> None:
        self.saves.clear()
        self.composes.clear()


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    n, length, inner = x.shape
    return x.view(n, length, heads, inner // heads).transpose(1, 2)


def compose_spatial_query(
    q: torch.Tensor, q_ref: torch.Tensor, num_frames: int, cond_start: int
) -> torch.Tensor:
    """C^S: q (Btot*F, L, C); q_ref (copies, L, C). Frames f < copies of the conditional batch
    entries get the reference query of frame f."""
    btot = q.shape[0] // num_frames
    n = min(q_ref.shape[0], num_frames)
    q = q.view(btot, num_frames, *q.shape[1:]).clone()
    q[cond_start:, :n] = q_ref[:n].to(q.dtype).unsqueeze(0)
    return q.view(btot * num_frames, *q.shape[2:])


def temporal_composed_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_ref0: torch.Tensor,
    heads: int,
    scale: float,
    lambda_: float,
    lambda_denominator: float,
    lambda_mode: str = _SAMPLER.lambda_mode,
) -> torch.Tensor:
    """C^T on the conditional rows. q/k/v: (Bc*P, F, C); k_ref0: (P, C), the reference key of
    frame 0 at each spatial position P. Returns the attention output (Bc*P, F, C) before to_out."""
    rows, frames, inner = q.shape
    positions = k_ref0.shape[0]
    qh, kh, vh = (_split_heads(x, heads) for x in (q, k, v))  # (rows, h, F, d)
    logits = (qh @ kh.transpose(-1, -2)) * scale  # (rows, h, F, F)
    kr = k_ref0.to(q.dtype).view(positions, heads, inner // heads)
    kr = kr.repeat(rows // positions, 1, 1)  # (rows, h, d) — batch-major like q
    ref_logit = torch.einsum("nhjd,nhd->nhj", qh, kr) * scale
    j = torch.arange(frames, device=q.device, dtype=q.dtype)
    factor = 1.0 + lambda_ * j / lambda_denominator
    if lambda_mode == "logit":  # official: the factor multiplies the logit
        logits[..., 0] = ref_logit * factor
    elif lambda_mode == "weight":  # frame 0's attention weight times the factor, then renormalised
        logits[..., 0] = ref_logit + torch.log(factor)
    else:
        raise ValueError(f"lambda_mode must be one of {', '.join(LAMBDA_MODES)}, got {lambda_mode!r}")
    out = logits.softmax(dim=-1) @ vh
    return out.transpose(1, 2).reshape(rows, frames, inner)


class CompositionProcessor:
    """Self-attention processor that saves (reference stream) or composes (main stream)."""

    def __init__(self, name: str, kind: str, controller: CompositionController):
        self.name = name
        self.kind = kind
        self.controller = controller

    def __call__(
        self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs
    ):
        ctl = self.controller
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch, length, _ = hidden_states.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, length, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if self._one_token(length, context, attention_mask):
            # one key (a temporal layer on a one-frame video): the softmax weight is exactly 1 and
            # the output is the value, bit for bit; the query (and the key unless saved) go unused
            value = attn.to_v(context)
            if ctl.mode == "save":
                self._save(lambda: attn.to_q(hidden_states), lambda: attn.to_k(context))
            out = value
        else:
            query = attn.to_q(hidden_states)
            key = attn.to_k(context)
            value = attn.to_v(context)
            out = None
            if ctl.mode == "save":  # keep the first batch entry: every entry is the same reference
                self._save(lambda: query, lambda: key)
            elif ctl.mode == "compose" and self.name in ctl.store and attention_mask is None:
                query, out = self._compose(attn, query, key, value, ctl.store[self.name])
            elif ctl.mode == "batched" and attention_mask is None:
                # the reference stream's first entry of this very call: frames 0.. (spatial rows are
                # batch-major (B*F), temporal rows (B*P))
                per_entry = ctl.num_frames if self.kind == "spatial" else query.shape[0] // ctl.batch
                ref = query[:per_entry] if self.kind == "spatial" else key[:per_entry, 0]
                ctl.saves[self.name] += 1
                query, out = self._compose(attn, query, key, value, ref)
            if out is None:
                out = sdpa(attn, query, key, value, attention_mask)

        out = attn.to_out[0](out.to(value.dtype))
        out = attn.to_out[1](out)
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor

    def _compose(self, attn, query, key, value, ref):
        """C^S or C^T on the conditional entries (from ctl.cond_start). `ref`: the reference query
        (spatial) or frame 0's reference key (temporal). Returns (query, out); out is None when the
        plain attention of the (possibly swapped) query remains to be computed."""
        ctl = self.controller
        if self.kind == "spatial" and ctl.spatial:
            ctl.composes[self.name] += 1
            return compose_spatial_query(query, ref, ctl.num_frames, ctl.cond_start), None
        if self.kind == "temporal" and ctl.temporal:
            start = ctl.cond_start * ref.shape[0]  # rows: entries x positions
            out = torch.empty_like(query)
            out[start:] = temporal_composed_attention(
                query[start:],
                key[start:],
                value[start:],
                ref,
                attn.heads,
                attn.scale,
                ctl.lambda_,
                ctl.lambda_denominator,
                ctl.lambda_mode,
            )
            if start:
                out[:start] = sdpa(attn, query[:start], key[:start], value[:start], None)
            ctl.composes[self.name] += 1
            return query, out
        return query, None

    def _one_token(self, length: int, context: torch.Tensor, attention_mask) -> bool:
        """Self-attention over a single token, plain ("off") or saving, without gradients, and the
        shortcut on."""
        ctl = self.controller
        return (
            length == 1
            and context.shape[1] == 1
            and attention_mask is None
            and ctl.single_token_shortcut
            and ctl.mode in ("off", "save")
            and not torch.is_grad_enabled()  # with gradients: the same path as any length
        )

    def _save(self, query, key) -> None:
        """Save mode: keep what the composition reads of the first batch entry (every entry is the
        same reference): a spatial layer's query (frames, L, C), a temporal layer's frame-0 key
        (P, C). `query`/`key`: functions returning the call's projections."""
        ctl = self.controller
        if self.kind == "spatial":
            q = query()
            kept = q[: q.shape[0] // max(1, ctl.ref_batch)]
        else:
            k = key()
            kept = k[: k.shape[0] // max(1, ctl.ref_batch), 0]
        ctl.store[self.name] = kept.detach().clone()  # a copy: the call's q/k are freed
        ctl.saves[self.name] += 1


def sdpa(attn, query, key, value, attention_mask):
    """`F.scaled_dot_product_attention` over (rows, L, heads * d) inputs, `attn`'s heads and scale."""
    heads = attn.heads
    rows = query.shape[0]
    q, k, v = (_split_heads(x, heads) for x in (query, key, value))
    if attn.norm_q is not None:
        q = attn.norm_q(q)
    if attn.norm_k is not None:
        k = attn.norm_k(k)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask, dropout_p=0.0, scale=attn.scale)
    return o.transpose(1, 2).reshape(rows, -1, query.shape[-1])


# diffusers' `Attention.forward` reads its processor's signature on every call (`inspect.signature`,
# about 40 us of Python a layer on the CPU); a precomputed `__signature__` is what inspect returns first
CompositionProcessor.__call__.__signature__ = inspect.signature(CompositionProcessor.__call__)


def install_composition(
    unet, controller: CompositionController, current: dict | None = None
) -> dict[str, str]:
    """Install composition processors on every attn1 layer; other layers keep their processor
    (`current`: the UNet's `attn_processors` when the caller has just read them).

    Returns {processor name: kind} for the composed layers."""
    current = unet.attn_processors if current is None else current
    procs, kinds = {}, {}
    for name, proc in current.items():
        kind = layer_kind(name)
        if kind is None:
            procs[name] = proc
        else:
            procs[name] = CompositionProcessor(name, kind, controller)
            kinds[name] = kind
    unet.set_attn_processor(procs)
    return kinds
