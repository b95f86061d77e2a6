"""The registry of named models: configs say `model=tiny` or `model=modelscope`.

Each entry is a builder returning `Components`; `conf/model/<name>.yaml` calls `build_model(name, ...)`.
"""

from __future__ import annotations

import inspect
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


_tiny.forwards_to = build_tiny


TINY_PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "assets" / "tiny_pretrained"


@register("tiny_pretrained")
def _tiny_pretrained(
    path: str | None = None, sketch_lora: bool = True, resolution: int = 64, device=None
) -> Components:
    """The project's own small text-to-video model, trained from scratch (`make tiny-world`).

    Base: VAE + text encoder + UNet3D pretrained on moving shapes. `sketch_lora` fuses the shipped
    sketch LoRA (`lora/pytorch_lora_weights.safetensors`, trained on the shipped sketches) into it.
    """
    from .lora import LORA_FILENAME, load_lora, merge_lora_into

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


_modelscope_random.forwards_to = build_modelscope_random


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


def _accepted(builder: Callable) -> set[str] | None:
    """The keyword settings a builder takes (following `**kw` into the function it forwards to,
    `builder.forwards_to`); None when that cannot be known."""
    params = inspect.signature(builder).parameters
    names = {n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if len(names) < len(params):
        target = getattr(builder, "forwards_to", None)
        if target is None:
            return None
        names |= _accepted(target) or set()
    return names


def _check_kwargs(name: str, builder: Callable, kwargs: dict) -> None:
    params = _accepted(builder)
    if params is None:
        return
    unknown = sorted(set(kwargs) - params)
    if unknown:
        from difflib import get_close_matches

        close = get_close_matches(unknown[0], list(params), n=1)
        hint = f"; did you mean model.{close[0]}?" if close else ""
        raise UserError(
            f"model {name} has no setting {unknown[0]!r} (it takes {', '.join(sorted(params)) or 'none'}){hint}"
        )


def build_model(name: str, lora: str | None = None, **kwargs) -> Components:
    """Build a registered model by name; `lora` optionally loads a `pytorch_lora_weights.safetensors`."""
    from ..quiet import quiet_third_party

    quiet_third_party()  # e.g. diffusers' "modules that should be kept in float32: []"
    for key in CONFIG_ONLY_KEYS:  # a model config instantiated as it is (hydra.utils.instantiate)
        kwargs.pop(key, None)
    if not isinstance(name, str) or name not in MODEL_REGISTRY:
        raise UserError(f"unknown model {name!r}; registered: {', '.join(sorted(MODEL_REGISTRY))}")
    builder = MODEL_REGISTRY[name]
    _check_kwargs(name, builder, kwargs)
    try:
        comps = builder(**kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise UserError(f"model {name}: {exc}") from None
    if lora:
        from .lora import load_lora

        load_lora(lora, comps.unet, comps.text_encoder)
        comps.info["lora"] = str(lora)
        comps.eval_frozen()
    return comps


# A model config is data: only its registry name (matched by value against MODEL_REGISTRY) and
# plain settings are used. `_target_` is never imported; a config naming anything other than the
# registry's builder is refused, so a config read from a file cannot decide what code runs.
MODEL_TARGETS = ("flipsketch.models.build_model", "flipsketch.models.registry.build_model")
# Keys a model config holds for the CLIs, not for the builder: default_sampler is the sampler preset
# animate/eval use with this model when neither the command line nor an experiment picks one.
CONFIG_ONLY_KEYS = ("default_sampler",)
_HYDRA_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")


def _plain(value) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, list | tuple) and all(_plain(v) for v in value)


def model_settings(node, what: str = "model") -> tuple[str, dict]:
    """(registry name, keyword settings) of a model config; anything else is one UserError line."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(node, DictConfig):
        try:
            node = OmegaConf.to_container(node, resolve=True)
        except OmegaConfBaseException as exc:
            raise UserError(f"{what}: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(node, dict):
        raise UserError(f"{what} must be a mapping with a registry `name`, got {type(node).__name__}")
    d = dict(node)
    target = d.get("_target_", MODEL_TARGETS[0])
    if target not in MODEL_TARGETS:
        raise UserError(
            f"{what} names _target_ {str(target)[:80]!r}: models are built by registry name only "
            f"(model=<{'|'.join(sorted(MODEL_REGISTRY))}>)"
        )
    if any(k in d for k in _HYDRA_KEYS[1:]):
        raise UserError(f"{what} may not set {', '.join(k for k in _HYDRA_KEYS[1:] if k in d)}")
    name = d.pop("name", None)
    if not isinstance(name, str) or name not in MODEL_REGISTRY:
        raise UserError(f"{what}: unknown model {name!r}; registered: {', '.join(sorted(MODEL_REGISTRY))}")
    kwargs = {}
    for k, v in d.items():
        if k in _HYDRA_KEYS or k in CONFIG_ONLY_KEYS:
            continue
        if not isinstance(k, str) or not k.isidentifier() or not _plain(v):
            raise UserError(f"{what}.{k} must be a plain value (text, number, true/false, a list of those)")
        kwargs[k] = v
    return name, kwargs


def build_model_from_config(node, what: str = "model") -> Components:
    """Build the model a config names, by registry name (never by importing its `_target_`)."""
    name, kwargs = model_settings(node, what)
    return build_model(name, **kwargs)


def check_model_config(node, what: str = "model") -> tuple[str, dict]:
    """Check a model config without building anything: registry name, setting names and types,
    and the header of a LoRA file it names. Returns (name, settings)."""
    from ..checks import as_bool, as_float, as_int, as_str
    from .loaders import resolve_dtype

    name, kwargs = model_settings(node, what)
    _check_kwargs(name, MODEL_REGISTRY[name], {k: v for k, v in kwargs.items() if k != "lora"})
    if "resolution" in kwargs:
        res = as_int(kwargs["resolution"], f"{what}.resolution", 8, 4096)
        if res % 8:
            raise UserError(f"{what}.resolution must be a multiple of 8, got {res}")
    if "seed" in kwargs:
        as_int(kwargs["seed"], f"{what}.seed", 0)
    if kwargs.get("dtype") is not None:
        resolve_dtype(as_str(kwargs["dtype"], f"{what}.dtype"))
    for key in ("sketch_lora",):
        if key in kwargs:
            as_bool(kwargs[key], f"{what}.{key}")
    if "raw_lora_scale" in kwargs:
        as_float(kwargs["raw_lora_scale"], f"{what}.raw_lora_scale")
    for key in ("path", "raw_lora", "device", "lora"):
        if kwargs.get(key) is not None:
            as_str(kwargs[key], f"{what}.{key}", allow_empty=False)
    if kwargs.get("raw_lora") is not None and not Path(str(kwargs["raw_lora"])).expanduser().is_file():
        raise MissingWeightsError(f"raw LoRA file not found: {kwargs['raw_lora']}")
    if kwargs.get("lora"):
        from .lora import check_lora_file

        check_lora_file(kwargs["lora"])
    _check_weights(name, kwargs)
    return name, kwargs


def _check_weights(name: str, kwargs: dict) -> None:
    """The weight folder a model loads from, checked for its layout (nothing is read)."""
    from .loaders import SUBFOLDERS, check_pipeline_folder

    if name in ("modelscope", "flipsketch_ckpt"):
        default = inspect.signature(MODEL_REGISTRY[name]).parameters["path"].default
        what = "ModelScope text-to-video-ms-1.7b" if name == "modelscope" else "FlipSketch checkpoint-2500"
        check_pipeline_folder(str(kwargs.get("path") or default), what)
    elif name == "tiny_pretrained" and kwargs.get("path"):
        needed = tuple(s for s in SUBFOLDERS if s != "tokenizer")
        check_pipeline_folder(str(kwargs["path"]), "tiny_pretrained", needed)
