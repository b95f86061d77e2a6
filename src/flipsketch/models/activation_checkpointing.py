"""Activation checkpointing for UNet3DConditionModel, whose `enable_gradient_checkpointing` raises.

Wrapping each down/mid/up block's forward with `torch.utils.checkpoint` (non-reentrant) gives
identical gradients with a fraction of the activation memory.
"""

from __future__ import annotations

import contextlib
import functools

from torch.utils.checkpoint import checkpoint


def _blocks(unet):
    blocks = list(unet.down_blocks) + list(unet.up_blocks)
    if getattr(unet, "mid_block", None) is not None:
        blocks.append(unet.mid_block)
    return blocks


def enable_block_checkpointing(unet) -> None:
    for block in _blocks(unet):
        if getattr(block, "_flipsketch_ckpt_forward", None) is not None:
            continue
        original = block.forward

        @functools.wraps(original)
        def wrapped(*args, __original=original, **kwargs):
            import torch

            if not torch.is_grad_enabled():
                return __original(*args, **kwargs)
            return checkpoint(__original, *args, use_reentrant=False, **kwargs)

        block._flipsketch_ckpt_forward = original
        block.forward = wrapped


def disable_block_checkpointing(unet) -> None:
    for block in _blocks(unet):
        if getattr(block, "_flipsketch_ckpt_forward", None) is not None:
            block._flipsketch_ckpt_forward = None
            del block.forward  # drop the instance wrapper: the class method is back


def is_block_checkpointing(unet) -> bool:
    return any(getattr(b, "_flipsketch_ckpt_forward", None) is not None for b in _blocks(unet))


@contextlib.contextmanager
def block_checkpointing(unet, enabled: bool = True):
    """Checkpoint the blocks inside the `with`; leaves them as found (wrapped by a trainer stays wrapped)."""
    if not enabled or is_block_checkpointing(unet):
        yield
        return
    enable_block_checkpointing(unet)
    try:
        yield
    finally:
        disable_block_checkpointing(unet)
