"""Deterministic randomness keyed by (seed, sample id, purpose): what makes resumed runs exact.

Nothing in training draws from a stream whose position depends on how many steps ran in this
process: every draw comes from a fresh generator seeded from stable integers, so step k draws the
same numbers whether the run got there straight or after a restart from a checkpoint.
"""

from __future__ import annotations

import numpy as np
import torch

# Purposes: distinct streams from the same (seed, sample) pair.
PERMUTATION, WINDOW, NOISE, LATENT, DROPOUT, VAL_NOISE = range(6)


def mix_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from any number of non-negative integers."""
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFFFFFFFFFF for k in keys]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFFFFFFFFFFFFFF


def torch_generator(*keys: int) -> torch.Generator:
    """A CPU generator (bit-identical on every machine); move what it draws to the device."""
    return torch.Generator(device="cpu").manual_seed(mix_seed(*keys))


def numpy_rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(mix_seed(*keys))
