"""The registry of named models: configs say `model=tiny` or `model=modelscope`.

Each entry is a builder returning `Components`; `conf/model/<name>.yaml` calls `build_model(name, ...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import MissingWeightsError, UserError
from .components import Components
from .loaders import load_pipeline_folder, load_raw_lora_pt
from .lora import apply_raw_lora_list
from .tiny import build_modelscope_random, build_tiny

MODEL_REGISTRY: dict[str, Callable[..., Components]] = {}


def register(name: str):
    def deco(fn: Callable[..., Components]):
        MODEL_REGISTRY[name] = fn
        return fn

    return deco


@register("tiny")
def _tiny(seed: int = 0, resolution: int = 64, **kw) -> Components:
    """Tiny random components of the ModelScope classes (seconds to build, for tests and the demo)."""
    return build_tiny(seed=seed, resolution=resolution, **kw)


TINY_PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "assets" / "tiny_pretrained"


@register("tiny_pretrained")
def _tiny_pretrained(
    path: str | None = None, sketch_lora: bool = True, resolution: int = 64, device=None
) -> Components:
    """The project's own small text-to-video model, trained from scratch (`make tiny-world`).

    Base: VAE + text encoder + UNet3D pretrained on moving shapes. `sketch_lora` fuses the shipped
    sketch LoRA (`lora/pytorch_lora_weights.safetensors`, trained on the shipped sketches) into it.
    """
    from ..training.checkpoint import merge_lora_into
    from .lora import LORA_FILENAME, load_lora

    folder = Path(path) if path else TINY_PRETRAINED_DIR
    if not (folder / "unet").is_dir():
        raise MissingWeightsError(
            f"tiny_pretrained: no weights at {folder}; build them with `make tiny-world` or set model.path"
        )
    comps = load_pipeline_folder(
        folder, "tiny_pretrained", resolution, "float32", None, what="tiny_pretrained", bundled_tokenizer=True
    )
    if sketch_lora:
        lora_file = folder / "lora" / LORA_FILENAME
        if not lora_file.is_file():
            raise MissingWeightsError(
                f"tiny_pretrained: no sketch LoRA at {lora_file}; run `make tiny-world` or pass model.sketch_lora=false"
            )
        load_lora(lora_file, comps.unet)
        merge_lora_into(comps.unet)  # a plain UNet3D again: further LoRAs train or load on top
        comps.info["sketch_lora"] = str(lora_file)
    if device:
        comps.to(device)
    return comps.eval_frozen()


@register("modelscope_random")
def _modelscope_random(seed: int = 0, resolution: int = 256, **kw) -> Components:
    """The full ModelScope architecture with random weights: real shapes for benchmarks."""
    return build_modelscope_random(seed=seed, resolution=resolution, **kw)


@register("modelscope")
def _modelscope(
    path: str = "ali-vilab/text-to-video-ms-1.7b", resolution: int = 256, dtype="float32", device=None
):
    """ModelScope text-to-video-ms-1.7b from a local diffusers folder or a hub id."""
    return load_pipeline_folder(
        path, "modelscope", resolution, dtype, device, what="ModelScope text-to-video-ms-1.7b"
    )


@register("flipsketch_ckpt")
def _flipsketch_ckpt(
    path: str = "checkpoints/flipsketch/checkpoint-2500",
    raw_lora: str | None = None,
    raw_lora_scale: float = 1.0,
    raw_lora_targets: str = "attn",
    resolution: int = 256,
    dtype="float32",
    device=None,
):
    """The authors' released merged pipeline folder, optionally plus raw LoRA tensors (`lora/*.pt`)."""
    comps = load_pipeline_folder(
        path, "flipsketch_ckpt", resolution, dtype, None, what="FlipSketch checkpoint-2500"
    )
    if raw_lora:
        n = apply_raw_lora_list(comps.unet, load_raw_lora_pt(raw_lora), raw_lora_scale, raw_lora_targets)
        comps.info["raw_lora"] = {"path": str(raw_lora), "layers": n}
    if device:
        comps.to(device)
    return comps


def build_model(name: str, lora: str | None = None, **kwargs) -> Components:
    """Build a registered model by name; `lora` optionally loads a `pytorch_lora_weights.safetensors`."""
    try:
        builder = MODEL_REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; registered: {', '.join(sorted(MODEL_REGISTRY))}") from None
    comps = builder(**kwargs)
    if lora:
        from .lora import load_lora

        load_lora(lora, comps.unet, comps.text_encoder)
        comps.info["lora"] = str(lora)
        comps.eval_frozen()
    return comps
