"""Rank-r LoRA for UNet3DConditionModel (and optionally the text encoder) through peft.

UNet3DConditionModel has no `add_adapter`, so adapters are injected with
`peft.inject_adapter_in_model`. Files are `pytorch_lora_weights.safetensors` in the diffusers key
layout (`unet.<module>.lora_A.weight`, `text_encoder.<module>...`) with the LoRA settings stored in
the safetensors metadata, so a fresh model can be rebuilt and loaded without extra config.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_path, share_like_umask
from ..errors import MissingWeightsError, UserError

LORA_FILENAME = "pytorch_lora_weights.safetensors"
_ATTN_PROJ = r"attn[12]\.(to_q|to_k|to_v|to_out\.0)$"

# Named target sets (config: lora.targets). Regexes over module names.
TARGET_SETS: dict[str, str] = {
    # spatial + temporal attention projections (our default, docs/METHOD.md section 1)
    "attn": rf".*{_ATTN_PROJ}",
    # spatial attention only (no temp_attentions / transformer_in)
    "spatial": rf"^(down_blocks|up_blocks|mid_block)(\.\d+)?\.attentions\.\d+\..*{_ATTN_PROJ}",
    # temporal attention only
    "temporal": rf"^(.*\.temp_attentions\.\d+\.|transformer_in\.).*{_ATTN_PROJ}",
}
TEXT_ENCODER_TARGETS = r".*(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))$"
LORA_TYPES = (nn.Linear, nn.Conv2d, nn.Conv3d)


def target_module_names(model: nn.Module, targets: str) -> list[str]:
    """Names of the modules a target set selects. `all` = every Linear/Conv (the authors' trainer)."""
    if targets == "all":
        return [n for n, m in model.named_modules() if isinstance(m, LORA_TYPES) and n]
    if targets == "text_encoder":
        pattern = re.compile(TEXT_ENCODER_TARGETS)
    elif targets in TARGET_SETS:
        pattern = re.compile(TARGET_SETS[targets])
    else:
        raise UserError(f"unknown LoRA target set {targets!r}; choose one of {sorted(TARGET_SETS) + ['all']}")
    names = [n for n, m in model.named_modules() if isinstance(m, LORA_TYPES) and pattern.match(n)]
    if not names:
        raise UserError(f"LoRA target set {targets!r} matches no module of {type(model).__name__}")
    return names


def add_lora(
    model: nn.Module,
    rank: int = 4,
    alpha: float | None = None,
    targets: str | list[str] = "attn",
    dropout: float = 0.0,
    init: bool | str = True,
) -> list[str]:
    """Inject a LoRA adapter ('default') into `model` in place; return the adapted module names."""
    from peft import LoraConfig, inject_adapter_in_model

    names = targets if isinstance(targets, list) else target_module_names(model, targets)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else rank,  # scale alpha/r = 1, as the paper's trainer
        lora_dropout=dropout,
        target_modules=names,
        init_lora_weights=init,
    )
    inject_adapter_in_model(config, model)
    return names


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if "lora_" in n]


def lora_state_dict(model: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    sd = get_peft_model_state_dict(model)
    return {f"{prefix}.{k}": v.detach().to("cpu", torch.float32).contiguous() for k, v in sd.items()}


def _lora_settings(model: nn.Module) -> dict:
    from peft.tuners.lora import LoraLayer

    for m in model.modules():
        if isinstance(m, LoraLayer) and "default" in m.r:
            return {"rank": int(m.r["default"]), "alpha": float(m.lora_alpha["default"])}
    raise UserError(f"{type(model).__name__} has no LoRA adapter to save")


def save_lora(
    path: str | Path, unet: nn.Module, text_encoder: nn.Module | None = None, extra: dict | None = None
) -> Path:
    """Save LoRA weights as `pytorch_lora_weights.safetensors` (diffusers layout). Atomic write."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / LORA_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = lora_state_dict(unet, "unet")
    meta = {"unet": json.dumps(_lora_settings(unet))}
    if text_encoder is not None and lora_parameters(text_encoder):
        tensors.update(lora_state_dict(text_encoder, "text_encoder"))
        meta["text_encoder"] = json.dumps(_lora_settings(text_encoder))
    meta["flipsketch"] = json.dumps(extra or {})
    # rank, alpha and targets where peft/diffusers read them (without it they take alpha = rank)
    adapter = {}
    for prefix in ("unet", "text_encoder"):
        if prefix in meta:
            st = json.loads(meta[prefix])
            adapter.update(
                {f"{prefix}.r": st["rank"], f"{prefix}.lora_alpha": st["alpha"],
                 f"{prefix}.target_modules": _module_names(tensors, prefix)}
            )  # fmt: skip
    meta[PEFT_METADATA_KEY] = json.dumps(adapter, sort_keys=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
        share_like_umask(tmp)  # safetensors writes 0600
    return path


PEFT_METADATA_KEY = "lora_adapter_metadata"  # diffusers' key: {"unet.r": .., "unet.lora_alpha": .., ...}


def _module_names(keys, prefix: str) -> list[str]:
    names = set()
    for k in keys:
        if k.startswith(prefix + "."):
            body = k[len(prefix) + 1 :]
            names.add(re.sub(r"\.lora_[AB](\.default)?\.weight$", "", body))
    return sorted(names)


def lora_file(path: str | Path) -> Path:
    """The `pytorch_lora_weights.safetensors` a path names (the file, or the folder holding it)."""
    path = Path(str(path)).expanduser()
    if path.is_dir():
        path = path / LORA_FILENAME
    if not path.is_file():
        raise MissingWeightsError(
            f"LoRA weights not found: {path} (expected a {LORA_FILENAME} file or its folder)"
        )
    return path


def _settings(meta: dict, prefix: str, path: Path) -> dict:
    raw = meta.get(prefix)
    if raw is None:
        return {}
    try:
        settings = json.loads(raw)
    except ValueError:
        raise UserError(f"{path}: its {prefix} LoRA settings are not valid JSON") from None
    if not isinstance(settings, dict):
        raise UserError(f"{path}: its {prefix} LoRA settings must be a JSON object")
    for key in ("rank", "alpha"):
        v = settings.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1e6):
            raise UserError(f"{path}: LoRA {prefix} {key} must be a positive number, got {v!r}")
    return settings


def check_lora_file(path: str | Path) -> Path:
    """Read only the header of a LoRA file (names, shapes, metadata): a missing, corrupt or foreign
    file is one UserError line, before any model is built. Returns the file."""
    from safetensors import safe_open

    path = lora_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for bad headers
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise UserError(f"{path} is not a readable safetensors file ({first})") from None
    lora_keys = [k for k in keys if k.startswith(("unet.", "text_encoder.")) and ".lora_" in k]
    if not lora_keys:
        raise UserError(f"{path} holds no LoRA weights (no unet.*.lora_A / lora_B tensors)")
    for prefix in ("unet", "text_encoder"):
        _settings(meta, prefix, path)
    return path


def load_lora(path: str | Path, unet: nn.Module, text_encoder: nn.Module | None = None) -> dict:
    """Inject and load LoRA weights saved by `save_lora` into fresh models. Returns the metadata.

    The file is data: its tensors and JSON metadata are read, nothing in it is executed, and a file
    that does not fit the model is one UserError line."""
    from peft import set_peft_model_state_dict
    from safetensors import safe_open

    path = check_lora_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - a truncated tensor block fails only here
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise UserError(f"{path} is not a readable safetensors file ({first})") from None
    for prefix, model in (("unet", unet), ("text_encoder", text_encoder)):
        names = _module_names(tensors, prefix)
        if not names:
            continue
        if model is None:
            raise UserError(f"{path} holds {prefix} LoRA weights but no {prefix} was given")
        settings = _settings(meta, prefix, path)
        try:
            first_a = next(v for k, v in tensors.items() if k.startswith(prefix + ".") and ".lora_A" in k)
            rank = int(settings.get("rank", first_a.shape[0]))
            add_lora(model, rank=rank, alpha=settings.get("alpha", rank), targets=names)
            sd = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
            result = set_peft_model_state_dict(model, sd)
        except UserError:
            raise
        except (StopIteration, ValueError, RuntimeError, KeyError, TypeError, IndexError) as exc:
            lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()] or [type(exc).__name__]
            first = next((ln for ln in lines if "size mismatch" in ln), lines[0])[:200]
            raise UserError(f"{path}: its {prefix} LoRA does not fit this model ({first})") from None
        unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
        if unexpected:
            raise UserError(f"{path}: {len(unexpected)} LoRA tensors match no module (e.g. {unexpected[0]})")
        dtype = next(p for n, p in model.named_parameters() if "lora_" not in n).dtype
        for p in lora_parameters(model):
            p.data = p.data.to(dtype)
    out = {}
    for k, v in meta.items():
        if v.startswith("{"):
            try:
                out[k] = json.loads(v)
            except ValueError:
                continue
    return out


def set_lora_merged(model: nn.Module, merged: bool) -> int:
    """Fuse (True) or unfuse (False) every LoRA layer of `model`; returns how many changed."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    n = 0
    for m in model.modules():
        if isinstance(m, BaseTunerLayer) and m.merged != merged:
            m.merge() if merged else m.unmerge()
            n += 1
    return n


def merged_base_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights with LoRA folded in, under the original (adapter-free) key names."""
    set_lora_merged(model, True)
    try:
        out = {}
        for k, v in model.state_dict().items():
            if "lora_" in k:
                continue
            out[k.replace(".base_layer.", ".")] = v.detach().clone()
        return out
    finally:
        set_lora_merged(model, False)


def strip_lora(model: nn.Module) -> int:
    """Replace every LoRA-wrapped layer by its base layer (weights as they are)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    wrapped = [(n, m) for n, m in model.named_modules() if isinstance(m, BaseTunerLayer) and n]
    for name, m in wrapped:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, m.get_base_layer())
    if wrapped and hasattr(model, "peft_config"):  # peft's record of the adapters just removed
        del model.peft_config
    return len(wrapped)


def merge_lora_into(model: nn.Module) -> int:
    """Fold the LoRA into the base weights and drop the adapters: a plain model again."""
    merged = merged_base_state_dict(model)
    n = strip_lora(model)
    model.load_state_dict(merged, strict=True)
    return n


def apply_raw_lora_list(unet: nn.Module, tensors, scale: float = 1.0, targets: str = "attn") -> int:
    """Fold the authors' raw LoRA tensors (a pickled list of [up, down, up, down, ...]) into `unet`.

    The list carries no names; pairs are matched, in order, to the target modules whose shapes fit
    (up: out x r, down: r x in). Every pair must fit or nothing is changed.
    """
    if isinstance(tensors, dict):
        tensors = list(tensors.values())
    if not isinstance(tensors, list | tuple) or len(tensors) % 2:
        raise UserError("raw LoRA file must hold an even-length list of tensors [up, down, ...]")
    modules = [m for n, m in unet.named_modules() if n in set(target_module_names(unet, targets))]
    pairs = list(zip(tensors[0::2], tensors[1::2], strict=True))
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    if len(pairs) != len(linears):
        raise UserError(
            f"raw LoRA has {len(pairs)} pairs but target set {targets!r} has {len(linears)} layers"
        )
    deltas = []
    for (up, down), lin in zip(pairs, linears, strict=True):
        if (
            up.shape[0] != lin.out_features
            or down.shape[1] != lin.in_features
            or up.shape[1] != down.shape[0]
        ):
            raise UserError(f"raw LoRA pair shapes {tuple(up.shape)}x{tuple(down.shape)} do not fit {lin}")
        deltas.append((lin, up.float() @ down.float()))
    with torch.no_grad():
        for lin, delta in deltas:
            lin.weight += (scale * delta).to(lin.weight.dtype)
    return len(deltas)
