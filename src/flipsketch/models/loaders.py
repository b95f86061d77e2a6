"""Loading real weights: ModelScope text-to-video-ms-1.7b and the authors' FlipSketch checkpoint.

Both are diffusers folders (`model_index.json`, `unet/`, `vae/`, `text_encoder/`, `tokenizer/`,
`scheduler/`), from a local path or a hub id on machines that can reach the hub. Anything missing
ends in a `MissingWeightsError`: one line saying what was looked for and the layout expected.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import torch

from ..errors import MissingWeightsError, UserError
from .components import Components

SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
LAYOUT = "model_index.json + unet/ vae/ text_encoder/ tokenizer/ scheduler/ (diffusers layout)"

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[str(dtype).lower()]
    except KeyError:
        raise UserError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}") from None


def auto_gpu_dtype() -> str:
    """dtype=auto on a GPU: bfloat16 where the GPU supports it, float16 otherwise."""
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def resolve_device(device: str, dtype: str):
    """(torch.device, torch.dtype) for the `device=` and `dtype=` settings (auto: a GPU when there
    is one); a device that does not exist or is absent is one UserError line."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={device} asked for, but no CUDA GPU is available")
    if dtype == "auto":  # GPU: bf16 where supported (the authors ran bf16; alignment backpropagates
        # through the UNet without loss scaling, where fp16 gradients can underflow), else fp16
        dtype = auto_gpu_dtype() if device.startswith("cuda") else "float32"
    return torch.device(device), resolve_dtype(dtype)


def looks_like_hub_id(path: str) -> bool:
    return not os.path.isabs(path) and path.count("/") == 1 and not path.startswith(".")


_LOCAL_ONLY = [False]  # set by `local_files_only()`: weights named by a checkpoint never go online


def hub_offline() -> bool:
    """True when no hub may be contacted: HF_HUB_OFFLINE=1 (our Makefile's and the tests' default)
    or inside `local_files_only()`."""
    env = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    return env or _LOCAL_ONLY[0]


@contextmanager
def local_files_only():
    """Within: a hub id loads only from the local Hugging Face cache, never over the network (for
    settings read from a file, e.g. the model a training checkpoint recorded)."""
    saved = _LOCAL_ONLY[0]
    _LOCAL_ONLY[0] = True
    try:
        yield
    finally:
        _LOCAL_ONLY[0] = saved


def _is_url(path: str) -> bool:
    return "://" in path or path.lower().startswith(("http:", "https:", "hf:", "s3:", "gs:", "ftp:"))


def _hub_cached(repo: str) -> bool:
    """Whether a hub repo's model_index.json is in the local cache (a local look-up, no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo, "model_index.json")
    except Exception:  # noqa: BLE001 - a malformed id or cache: not cached
        return False
    return isinstance(hit, str) and os.path.isfile(hit)


def check_pipeline_folder(
    path: str | os.PathLike, what: str, subfolders: tuple[str, ...] = SUBFOLDERS
) -> Path | str:
    """Return the local folder (or hub id) to load from, or raise one clear line."""
    if _is_url(str(path)):
        raise MissingWeightsError(
            f"{what}: {str(path)[:200]} is a URL; weights load from a local folder (or a hub id online), "
            "never from an address"
        )
    p = Path(os.path.expanduser(str(path)))
    if p.is_dir():
        missing = [s for s in subfolders if not (p / s).is_dir()]
        if missing:
            raise MissingWeightsError(
                f"{what}: folder {p} lacks {', '.join(s + '/' for s in missing)}; expected {LAYOUT}"
            )
        return p
    if looks_like_hub_id(str(path)):
        if hub_offline() and not _hub_cached(str(path)):  # fail now, not after minutes of retries
            why = (
                "HF_HUB_OFFLINE=1"
                if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
                else "it was named by a file (a checkpoint), which never makes the tool go online"
            )
            raise MissingWeightsError(
                f"{what}: {path} is a hub id, not a local folder, and it is not in the local cache; "
                f"the hub is not contacted ({why}): download it with network first, or set "
                "model.path to a local folder"
            )
        return str(path)
    raise MissingWeightsError(
        f"{what}: no weights at {p}; download them there ({LAYOUT}) or set model.path to a folder or hub id"
    )


def load_pipeline_folder(
    path: str | os.PathLike,
    name: str,
    resolution: int = 256,
    dtype: str | torch.dtype | None = "float32",
    device: str | None = None,
    what: str | None = None,
    bundled_tokenizer: bool = False,
) -> Components:
    """Load tokenizer, text encoder, VAE, UNet3D and DDIM scheduler from a diffusers folder.

    `bundled_tokenizer`: build the CLIP BPE tokenizer from open_clip's bundled vocabulary instead of
    reading `tokenizer/` (the project's own small models ship without one).
    """
    from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from .tokenizer import build_clip_tokenizer

    what = what or f"model '{name}'"
    needed = tuple(s for s in SUBFOLDERS if not (bundled_tokenizer and s == "tokenizer"))
    src = check_pipeline_folder(path, what, needed)
    torch_dtype = resolve_dtype(dtype)
    kw = dict(local_files_only=hub_offline() or isinstance(src, Path))
    from transformers.utils import logging as hf_logging

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a per-tensor "Loading weights" bar says nothing useful
    try:
        if bundled_tokenizer:
            tokenizer = build_clip_tokenizer()
        else:
            tokenizer = CLIPTokenizer.from_pretrained(src, subfolder="tokenizer", **kw)
        text_encoder = CLIPTextModel.from_pretrained(
            src, subfolder="text_encoder", torch_dtype=torch_dtype, **kw
        )
        vae = AutoencoderKL.from_pretrained(src, subfolder="vae", torch_dtype=torch_dtype, **kw)
        unet = UNet3DConditionModel.from_pretrained(src, subfolder="unet", torch_dtype=torch_dtype, **kw)
        scheduler = DDIMScheduler.from_pretrained(src, subfolder="scheduler", **kw)
    except Exception as exc:  # noqa: BLE001 - missing/corrupt/foreign files or an unreachable hub
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MissingWeightsError(f"{what}: could not load from {src} ({first}); expected {LAYOUT}") from None
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    comps = Components(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        unet=unet,
        scheduler=scheduler,
        name=name,
        source=str(src),
        resolution=resolution,
        info={"dtype": str(torch_dtype).replace("torch.", "")},
    )
    comps.eval_frozen()
    if device:
        comps.to(device)
    return comps


def save_pipeline_folder(comps: Components, path: str | os.PathLike, tokenizer: bool = True) -> Path:
    """Write components in the diffusers layout that `load_pipeline_folder` reads (safetensors).

    `tokenizer=False` leaves `tokenizer/` out (load with `bundled_tokenizer=True`).
    """
    import json

    import diffusers

    from ..atomic import share_like_umask

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    comps.unet.save_pretrained(out / "unet", safe_serialization=True)
    comps.vae.save_pretrained(out / "vae", safe_serialization=True)
    comps.text_encoder.save_pretrained(out / "text_encoder", safe_serialization=True)
    if tokenizer:
        from .tokenizer import save_tokenizer

        save_tokenizer(comps.tokenizer, out / "tokenizer")
    comps.scheduler.save_pretrained(out / "scheduler")
    index = {
        "_class_name": "TextToVideoSDPipeline",
        "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet3DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (out / "model_index.json").write_text(json.dumps(index, indent=2))
    share_like_umask(out)  # safetensors writes 0600
    return out


def load_raw_lora_pt(path: str | os.PathLike):
    """Load the authors' raw LoRA tensors (`lora/<step>_unet.pt`): pickled, so weights_only=True."""
    p = Path(path)
    if not p.is_file():
        raise MissingWeightsError(
            f"raw LoRA file not found: {p} (expected e.g. checkpoint/lora/2500_unet.pt)"
        )
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise UserError(f"{p} is not a loadable LoRA tensor file ({type(exc).__name__})") from None
