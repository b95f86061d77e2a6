"""A diffusers model's `dtype`, read once for the length of a block instead of on every forward.

diffusers' `ModelMixin.dtype` (`get_parameter_dtype`) walks every submodule looking for a
layerwise-casting hook before it reads the first parameter's dtype, and `UNet3DConditionModel.forward`
reads it once per call (to cast the timestep embedding): about 0.8 ms of Python per UNet call on
the tiny model, a tenth of a one-frame call. A sampling call's weights keep their dtype, so the
value read on entry is the value every forward would read:

    with fixed_dtype(unet):  # unet.dtype is the value read on entry, until the block ends
        ...

Inside the block the model's class is a subclass of its own whose `dtype` returns that value
(isinstance checks still hold); on exit the class is put back. A module that is not a diffusers
model, or whose class already overrides `dtype`, is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

_SUBCLASSES: dict[type, type] = {}
_ATTR = "_flipsketch_fixed_dtype"


def _fixed_dtype(self) -> torch.dtype:
    return self.__dict__[_ATTR]


def _subclass(cls: type) -> type:
    sub = _SUBCLASSES.get(cls)
    if sub is None:
        sub = type(cls.__name__, (cls,), {"dtype": property(_fixed_dtype), "__module__": cls.__module__})
        sub.__qualname__ = cls.__qualname__
        _SUBCLASSES[cls] = sub
    return sub


def _applies(module) -> bool:
    try:
        from diffusers.models.modeling_utils import ModelMixin
    except ImportError:  # pragma: no cover - diffusers is a dependency
        return False
    cls = type(module)
    return (
        isinstance(module, ModelMixin) and cls not in _SUBCLASSES.values() and cls.dtype is ModelMixin.dtype
    )


@contextmanager
def fixed_dtype(module) -> Iterator[None]:
    """`module.dtype` read once on entry and returned by every read until the block ends."""
    if not _applies(module):
        yield
        return
    cls = type(module)
    module.__dict__[_ATTR] = module.dtype
    module.__class__ = _subclass(cls)
    try:
        yield
    finally:
        module.__class__ = cls
        module.__dict__.pop(_ATTR, None)
