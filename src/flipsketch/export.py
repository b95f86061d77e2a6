"""flipsketch-export: a training checkpoint -> pytorch_lora_weights.safetensors (+ a merged model folder).

    flipsketch-export ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt
    flipsketch-export ckpt_path=... out=weights/my_lora merged=true   # + out/merged/ (diffusers folder)

The LoRA file loads with `build_model(<model>, lora=out)`; the merged folder with
`build_model("modelscope", path=out/merged)` (or `model=modelscope model.path=...`). The base model is
the one recorded in the checkpoint unless `model=...` overrides it.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from .cli import hydra_cli
from .errors import UserError


def default_out(ckpt_path: str | Path) -> Path:
    p = Path(ckpt_path)
    return p.parent.parent / "export" / p.stem


def export_checkpoint(
    ckpt_path: str | Path,
    out: str | Path | None = None,
    merged: bool = False,
    model: dict | None = None,
) -> dict:
    """Write `out/pytorch_lora_weights.safetensors` and, with `merged`, `out/merged/`. Returns the paths."""
    from .cli import instantiate_checked as instantiate
    from .models.loaders import save_pipeline_folder
    from .models.lora import save_lora
    from .training.checkpoint import apply_checkpoint, merge_lora_into, read_checkpoint

    ckpt = read_checkpoint(ckpt_path)
    meta = ckpt["flipsketch"]
    model_cfg = model or meta.get("model")
    if not model_cfg:
        raise UserError(f"{ckpt_path} records no model config: pass model=<name> (e.g. model=modelscope)")
    components = instantiate(OmegaConf.create(dict(model_cfg)))
    info = apply_checkpoint(components, ckpt)
    out = Path(out) if out else default_out(ckpt_path)
    te = components.text_encoder if meta.get("text_encoder_targets") else None
    extra = {"global_step": info["global_step"], "checkpoint": str(ckpt_path), **meta}
    result = {
        "lora": str(save_lora(out, components.unet, te, extra=extra)),
        "global_step": info["global_step"],
    }
    if merged:
        merge_lora_into(components.unet)
        if te is not None:
            merge_lora_into(components.text_encoder)
        result["merged"] = str(save_pipeline_folder(components, out / "merged"))
    return result


def export(cfg: DictConfig) -> dict:
    try:
        ckpt_path = cfg.ckpt_path
    except MissingMandatoryValue:
        raise UserError("no checkpoint: pass ckpt_path=<run>/checkpoints/last.ckpt") from None
    model = OmegaConf.to_container(cfg.model, resolve=True) if cfg.get("model") else None
    result = export_checkpoint(ckpt_path, cfg.get("out"), bool(cfg.get("merged", False)), model)
    print(f"LoRA weights: {result['lora']} (step {result['global_step']})")
    if "merged" in result:
        print(f"merged model folder: {result['merged']}")
    return result


main = hydra_cli("export", export)


if __name__ == "__main__":
    main()
