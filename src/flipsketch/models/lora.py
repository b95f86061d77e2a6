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


_LORA_KEY = re.compile(r"^(unet|text_encoder)\.(.+)\.lora_(A|B)(\.default)?\.weight$")
_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
MAX_LORA_RANK = 4096  # as `module.lora.rank` allows; the module's own sizes bound it further
MAX_LORA_ABS = 1e4  # |value| above this is no trained LoRA (it overflows fp16, blanks the frames)


def _header(path: Path) -> tuple[dict, dict[str, tuple[str, tuple[int, ...]]]]:
    """(metadata, {key: (dtype, shape)}) from the safetensors header alone: no tensor is read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            entries = {}
            for k in f.keys():
                sl = f.get_slice(k)
                entries[k] = (str(sl.get_dtype()), tuple(int(d) for d in sl.get_shape()))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for bad headers
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise UserError(f"{path} is not a readable safetensors file ({first})") from None
    return meta, entries


def lora_layout(path: Path, entries: dict) -> dict[str, dict[str, dict[str, tuple[int, ...]]]]:
    """{prefix: {module: {"A": shape, "B": shape}}} of a LoRA file's header; anything that is not
    a complete, float, consistently ranked LoRA pair is one UserError line naming the first bad key."""
    layout: dict[str, dict[str, dict[str, tuple[int, ...]]]] = {}
    for key in sorted(entries):
        dtype, shape = entries[key]
        m = _LORA_KEY.match(key)
        if not m:
            raise UserError(
                f"{path}: {key!r} is not a LoRA tensor (only unet.<module>.lora_A/lora_B.weight and "
                "text_encoder.<module>.lora_A/lora_B.weight load; base weights never do)"
            )
        if dtype not in _FLOAT_DTYPES:
            raise UserError(f"{path}: LoRA tensor {key!r} has dtype {dtype}, not a float type")
        if len(shape) not in (2, 4, 5) or min(shape) < 1:
            raise UserError(
                f"{path}: LoRA tensor {key!r} has shape {list(shape)}, not a LoRA matrix or kernel"
            )
        pair = layout.setdefault(m.group(1), {}).setdefault(m.group(2), {})
        if m.group(3) in pair:
            raise UserError(f"{path}: LoRA tensor {key!r} appears twice (with and without .default)")
        pair[m.group(3)] = shape
    for prefix, modules in layout.items():
        for name, pair in modules.items():
            missing = [x for x in "AB" if x not in pair]
            if missing:
                raise UserError(
                    f"{path}: {prefix}.{name} has no lora_{missing[0]} tensor (each LoRA needs an A and a B)"
                )
            rank_a, rank_b = pair["A"][0], pair["B"][1]
            if rank_a != rank_b or len(pair["A"]) != len(pair["B"]) or any(d != 1 for d in pair["B"][2:]):
                raise UserError(
                    f"{path}: {prefix}.{name}.lora_A {list(pair['A'])} and lora_B {list(pair['B'])} do not pair up"
                )
            if rank_a > MAX_LORA_RANK:
                raise UserError(
                    f"{path}: {prefix}.{name} claims LoRA rank {rank_a} (at most {MAX_LORA_RANK})"
                )
        ranks = {pair["A"][0] for pair in modules.values()}
        if len(ranks) > 1:
            raise UserError(f"{path}: its {prefix} LoRA mixes ranks {sorted(ranks)}")
    return layout


def check_lora_file(path: str | Path) -> Path:
    """Read only the header of a LoRA file (names, shapes, metadata): a missing, corrupt or foreign
    file, a base-weight key or an incomplete A/B pair is one UserError line, before any model is
    built. Returns the file."""
    path = lora_file(path)
    meta, entries = _header(path)
    if not any(k.startswith(("unet.", "text_encoder.")) and ".lora_" in k for k in entries):
        raise UserError(f"{path} holds no LoRA weights (no unet.*.lora_A / lora_B tensors)")
    layout = lora_layout(path, entries)
    for prefix in ("unet", "text_encoder"):
        settings = _settings(meta, prefix, path)
        if prefix in layout and settings.get("rank") is not None:
            rank = next(iter(layout[prefix].values()))["A"][0]
            if settings["rank"] != rank:
                raise UserError(
                    f"{path}: its {prefix} settings say rank {settings['rank']}, its tensors {rank}"
                )
    return path


def _module_shapes(module: nn.Module) -> tuple[int, int, tuple[int, ...]] | None:
    """(in, out, kernel) of a layer LoRA can adapt (None for any other module)."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features, ()
    if isinstance(module, nn.Conv2d | nn.Conv3d):
        return module.in_channels // module.groups, module.out_channels, tuple(module.kernel_size)
    return None


def check_lora_fits(path: Path, prefix: str, model: nn.Module, modules: dict, meta: dict) -> None:
    """Every LoRA pair of the header names an adaptable module of `model`, with its shapes and a
    rank within the module's sizes: checked before any adapter is built or tensor read."""
    names = dict(model.named_modules())
    listed = None
    try:
        adapter = json.loads(meta.get(PEFT_METADATA_KEY) or "{}")
        listed = adapter.get(f"{prefix}.target_modules") if isinstance(adapter, dict) else None
    except ValueError:
        pass
    for name in sorted(modules):
        pair = modules[name]
        key = f"{prefix}.{name}.lora_A.weight"
        module = names.get(name) if name else None
        dims = _module_shapes(module) if module is not None else None
        if dims is None:
            what = "no module" if module is None else f"a {type(module).__name__}, which LoRA does not adapt"
            raise UserError(f"{path}: {key!r} names {what} of this {prefix}")
        if isinstance(listed, list) and name not in listed:
            raise UserError(f"{path}: {key!r} is not among the file's own target_modules")
        n_in, n_out, kernel = dims
        rank = pair["A"][0]
        want_a, want_b = (rank, n_in, *kernel), (n_out, rank, *(1 for _ in kernel))
        if pair["A"] != want_a or pair["B"] != want_b:
            raise UserError(
                f"{path}: {key!r} has shapes {list(pair['A'])} / {list(pair['B'])}, this {prefix}'s "
                f"{name} needs {list(want_a)} / {list(want_b)} (another model?)"
            )
        if rank > min(n_in, n_out):
            raise UserError(f"{path}: {key!r} claims rank {rank}, above the module's size {min(n_in, n_out)}")


def check_lora_values(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """No NaN or infinity, nothing beyond MAX_LORA_ABS: such a LoRA gives blank frames."""
    for key in sorted(tensors):
        t = tensors[key]
        if not bool(torch.isfinite(t).all()):
            raise UserError(f"{path}: LoRA tensor {key!r} holds NaN or infinite values")
        peak = float(t.abs().max()) if t.numel() else 0.0
        if peak > MAX_LORA_ABS:
            raise UserError(
                f"{path}: LoRA tensor {key!r} holds a value of {peak:.3g} (at most {MAX_LORA_ABS:g})"
            )


def load_lora(path: str | Path, unet: nn.Module, text_encoder: nn.Module | None = None) -> dict:
    """Inject and load LoRA weights saved by `save_lora` into fresh models. Returns the metadata.

    The file is data: its tensors and JSON metadata are read, nothing in it is executed, and a file
    that does not fit the model is one UserError line."""
    from peft import set_peft_model_state_dict
    from safetensors import safe_open

    path = check_lora_file(path)
    meta, entries = _header(path)
    layout = lora_layout(path, entries)
    for prefix, model in (("unet", unet), ("text_encoder", text_encoder)):
        if prefix in layout:
            if model is None:
                raise UserError(f"{path} holds {prefix} LoRA weights but no {prefix} was given")
            check_lora_fits(path, prefix, model, layout[prefix], meta)  # before any tensor is read
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - a truncated tensor block fails only here
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise UserError(f"{path} is not a readable safetensors file ({first})") from None
    check_lora_values(path, tensors)
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
