"""How sharp is a UNet3D's self-attention? The precondition for FlipSketch's composition to act.

C^S swaps queries and C^T scales one logit by at most (1 + lambda * j / 50): on near-uniform attention
maps neither changes the output. `attention_entropy` measures the mean entropy of every spatial and
temporal self-attention map (attn1) of one UNet call, over log(sequence length): 1 = uniform, 0 = one-hot.
"""

from __future__ import annotations

import math

import torch


def attention_entropy(
    unet, latents: torch.Tensor, t: torch.Tensor, text_emb: torch.Tensor
) -> dict[str, float]:
    """{"spatial": ratio, "temporal": ratio} for one call of `unet` (hooks removed afterwards)."""
    from ..attention import layer_kind

    ratios: dict[str, list[float]] = {"spatial": [], "temporal": []}
    hooks = []
    for name, mod in unet.named_modules():
        kind = layer_kind(name + ".processor")
        if kind is None or not hasattr(mod, "head_to_batch_dim"):  # attention modules, not their Linear parts
            continue

        def hook(m, args, kwargs, out, kind=kind):
            h = args[0] if args else kwargs["hidden_states"]
            q, k = m.head_to_batch_dim(m.to_q(h)), m.head_to_batch_dim(m.to_k(h))
            p = m.get_attention_scores(q, k, None).float()
            ent = -(p * p.clamp_min(1e-12).log()).sum(-1).mean()
            ratios[kind].append(float(ent / math.log(p.shape[-1])))

        hooks.append(mod.register_forward_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            unet(latents, t, encoder_hidden_states=text_emb)
    finally:
        for h in hooks:
            h.remove()
    return {k: sum(v) / len(v) for k, v in ratios.items() if v}
