"""Training checkpoints -> models with the trained LoRA (for export, evaluation and tests).

A checkpoint holds the LoRA tensors under the LightningModule's names (`unet.<module>.lora_A.default.weight`,
`text_encoder.<module>...`), the optimizer state, and a `flipsketch` entry with the LoRA settings,
the adapted module names and the resolved model config it was trained on.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..models.lora import MAX_LORA_RANK, add_lora, check_lora_values, lora_parameters
from .module import CKPT_KEY


def read_checkpoint(path: str | Path) -> dict:
    """Load a flipsketch-train checkpoint as data (weights_only: no pickled code runs) and check
    its layout; a missing, truncated, corrupt or foreign file is one UserError line."""
    path = Path(str(path)).expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}" + (" (a folder)" if path.is_dir() else ""))
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a file we cannot use
        raise UserError(f"{path} is not a readable training checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or CKPT_KEY not in ckpt or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a flipsketch-train checkpoint (no '{CKPT_KEY}' entry)")
    check_layout(ckpt, path)
    return ckpt


def _str_list(value) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


def check_layout(ckpt: dict, path: str | Path) -> None:
    """The parts of a checkpoint that export and resume read, with the types they need."""

    def bad(what: str):
        raise UserError(f"{path} is not a usable flipsketch-train checkpoint ({what})")

    meta, state = ckpt[CKPT_KEY], ckpt["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        bad("state_dict must map names to tensors")
    if not isinstance(meta, dict):
        bad(f"'{CKPT_KEY}' must be a mapping")
    lora = meta.get("lora")
    if not isinstance(lora, dict):
        bad("no LoRA settings")
    for key in ("rank", "text_encoder_rank"):
        v = lora.get(key)
        if (v is not None or key == "rank") and (
            isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_LORA_RANK
        ):
            bad(f"lora.{key} must be an integer from 1 to {MAX_LORA_RANK}")
    alpha = lora.get("alpha")
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, int | float)):
        bad("lora.alpha must be a number")
    if not _str_list(meta.get("unet_targets")):
        bad("unet_targets must be a list of module names")
    if meta.get("text_encoder_targets") is not None and not _str_list(meta["text_encoder_targets"]):
        bad("text_encoder_targets must be a list of module names")
    step = ckpt.get("global_step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        bad("global_step must be an integer")


def check_resumable(path: str | Path) -> dict:
    """A checkpoint `flipsketch-train ckpt_path=...` can resume from: ours, written by Lightning."""
    ckpt = read_checkpoint(path)
    missing = [k for k in ("loops", "optimizer_states", "global_step") if k not in ckpt]
    if missing:
        raise UserError(f"{path} is not a Lightning training checkpoint (no {', '.join(missing)})")
    return ckpt


def _load_into(model: nn.Module, prefix: str, targets: list[str], lora: dict, rank: int, state: dict) -> int:
    if not targets:
        return 0
    sub = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
    base = next((k for k in sub if ".lora_" not in k), None)
    if base is not None:  # only LoRA tensors load: a base weight in a checkpoint is never applied
        raise UserError(f"checkpoint tensor {prefix}.{base!r} is not a LoRA tensor; refusing to load it")
    check_lora_values(Path("checkpoint"), {f"{prefix}.{k}": v for k, v in sub.items()})
    try:
        add_lora(model, rank=rank, alpha=lora.get("alpha"), targets=list(targets), dropout=0.0)
    except ValueError as exc:  # peft: a target name that is no module of this model
        first = " ".join(str(exc).split())[:200]
        raise UserError(f"checkpoint LoRA targets do not fit the {prefix}: {first}") from None
    try:
        result = model.load_state_dict(sub, strict=False)
    except RuntimeError as exc:  # e.g. a size mismatch: another model or rank
        first = " ".join(str(exc).split())[:200]
        raise UserError(f"checkpoint LoRA tensors do not fit the {prefix}: {first}") from None
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        bad = (missing or result.unexpected_keys)[0]
        raise UserError(f"checkpoint LoRA tensors do not fit the {prefix} (e.g. {bad}): wrong model?")
    dtype = next(p for n, p in model.named_parameters() if "lora_" not in n).dtype
    for p in lora_parameters(model):
        p.data = p.data.to(dtype)
    return len(sub)


def apply_checkpoint(components, ckpt: dict) -> dict:
    """Inject the checkpoint's LoRA into `components` (built fresh, without LoRA) and load it."""
    meta = ckpt[CKPT_KEY]
    lora = meta["lora"]
    n = _load_into(components.unet, "unet", meta["unet_targets"], lora, int(lora["rank"]), ckpt["state_dict"])
    te_rank = int(lora.get("text_encoder_rank") or lora["rank"])
    n += _load_into(
        components.text_encoder,
        "text_encoder",
        meta.get("text_encoder_targets") or [],
        lora,
        te_rank,
        ckpt["state_dict"],
    )
    components.eval_frozen()
    return {"tensors": n, "global_step": ckpt.get("global_step")}


def atomic_checkpoint_io():
    """Lightning's checkpoint writer, made safe for a full disk and a kill: the checkpoint is
    serialised in memory, written to a temp file in the destination folder (Lightning's own writer
    stages it in the system temp folder and copies it across filesystems, which leaves a truncated
    last.ckpt when the disk fills), flushed to disk, then renamed over the old one. A failed write
    leaves the previous checkpoint as it was."""
    import io
    import os

    from lightning_fabric.plugins import TorchCheckpointIO

    from ..atomic import atomic_path, clean_stale_temps

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
            if storage_options is not None:
                raise TypeError("AtomicCheckpointIO takes no storage_options")
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            clean_stale_temps(path.parent)  # a killed run's half-written temp checkpoints
            buf = io.BytesIO()
            torch.save(checkpoint, buf)
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                fh.write(buf.getbuffer())
                fh.flush()
                os.fsync(fh.fileno())  # a full disk shows here, before the rename, not after

    return AtomicCheckpointIO()
