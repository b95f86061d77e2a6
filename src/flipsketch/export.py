"""flipsketch-export: a training checkpoint -> pytorch_lora_weights.safetensors (+ a merged model folder).

    flipsketch-export ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt
    flipsketch-export ckpt_path=... out=weights/my_model merged=true   # + out/ is a diffusers folder

The LoRA file loads with `build_model(<model>, lora=out)`; with merged=true `out` itself is also the
merged model folder (model_index.json, unet/, ...): `build_model("modelscope", path=out)` (or
`model=modelscope model.path=...`). The base model is
the one recorded in the checkpoint unless `model=...` overrides it; a recorded model is only ever
rebuilt by its registry name (tiny, tiny_pretrained, modelscope, ...), never by a `_target_` read
from the file. Bad input is one `error:` line and exit code 2, with nothing written.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from .cli import cli_main
from .errors import UserError

CKPT_KEY = "flipsketch"  # flipsketch.training.module.CKPT_KEY (not imported: Lightning is slow to load)


def default_out(ckpt_path: str | Path) -> Path:
    p = Path(ckpt_path)
    return p.parent.parent / "export" / p.stem


def _model_of(ckpt_path, ckpt: dict, model) -> tuple[str, dict]:
    """The model to rebuild: the user's `model=` config, else the registry name and plain settings
    recorded in the checkpoint. The checkpoint is data: its `_target_` is never imported, a name
    outside the registry is refused."""
    from .models.registry import check_model_config

    if model:
        return check_model_config(model)
    recorded = ckpt[CKPT_KEY].get("model")
    if not recorded:
        raise UserError(f"{ckpt_path} records no model config: pass model=<name> (e.g. model=modelscope)")
    try:
        return check_model_config(recorded, what="the model recorded in the checkpoint")
    except UserError as exc:
        raise UserError(f"{exc}; pass model=<name> to choose one") from None


def check_export(ckpt_path, out=None, merged: bool = False, model=None) -> tuple[dict, Path, str, dict]:
    """Everything export needs, checked before any model is built or file written."""
    from .checks import as_bool, check_out_dir, check_own_folder
    from .training.checkpoint import read_checkpoint

    as_bool(merged, "merged")
    if ckpt_path in (None, ""):
        raise UserError("no checkpoint: pass ckpt_path=<run>/checkpoints/last.ckpt")
    from contextlib import nullcontext

    from .models.loaders import local_files_only

    ckpt = read_checkpoint(str(ckpt_path))
    with nullcontext() if model else local_files_only():  # a recorded model: local files only
        name, kwargs = _model_of(ckpt_path, ckpt, model)
    out = check_out_dir(out if out not in (None, "") else default_out(ckpt_path), "out")
    check_own_folder(out, "out")  # a folder of the user's is never written into
    return ckpt, out, name, kwargs


def export_checkpoint(
    ckpt_path: str | Path,
    out: str | Path | None = None,
    merged: bool = False,
    model: dict | None = None,
) -> dict:
    """Write `out/pytorch_lora_weights.safetensors` and, with `merged`, the merged model's diffusers
    folder into `out` itself (beside the LoRA file). Returns the paths."""
    from contextlib import nullcontext

    from .checks import mark_own_folder
    from .models.loaders import local_files_only, save_pipeline_folder
    from .models.lora import merge_lora_into, save_lora
    from .models.registry import build_model
    from .training.checkpoint import apply_checkpoint

    # the model recorded in the checkpoint loads from local files only: a checkpoint alone never
    # makes the tool contact a hub (checked in check_export too, before anything is built)
    with nullcontext() if model else local_files_only():
        ckpt, out, name, kwargs = check_export(ckpt_path, out, merged, model)
        mark_own_folder(out, "flipsketch-export")
        meta = ckpt[CKPT_KEY]
        components = build_model(name, **kwargs)
    info = apply_checkpoint(components, ckpt)
    te = components.text_encoder if meta.get("text_encoder_targets") else None
    extra = {"global_step": info["global_step"], "checkpoint": str(ckpt_path), **meta}
    import os
    import shutil

    from .atomic import temp_name
    from .models.lora import LORA_FILENAME

    created = [p for p in (out, *out.parents) if not p.exists()]
    new_lora = not (out / LORA_FILENAME).exists()
    try:
        result = {
            "lora": str(save_lora(out, components.unet, te, extra=extra)),
            "global_step": info["global_step"],
        }
        if merged:
            merge_lora_into(components.unet)
            if te is not None:
                merge_lora_into(components.text_encoder)
            tmp = temp_name(out / "merged")  # whole or not at all (a full disk, a kill): written aside,
            tmp.mkdir()  # then each part renamed into out on the same filesystem
            try:
                save_pipeline_folder(components, tmp)
                for entry in sorted(tmp.iterdir()):
                    dest = out / entry.name
                    if dest.is_dir():
                        shutil.rmtree(dest)
                    os.replace(entry, dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            result["merged"] = str(out)
    except BaseException:  # a failed export leaves no half of itself: no new LoRA without its folder
        if new_lora:
            (out / LORA_FILENAME).unlink(missing_ok=True)
        for p in created:
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        raise
    return result


def _args(cfg: DictConfig) -> tuple:
    from .checks import reject_nonfinite

    reject_nonfinite(cfg)
    try:
        ckpt_path = cfg.ckpt_path
    except MissingMandatoryValue:
        raise UserError("no checkpoint: pass ckpt_path=<run>/checkpoints/last.ckpt") from None
    model = OmegaConf.to_container(cfg.model, resolve=True) if cfg.get("model") else None
    return ckpt_path, cfg.get("out"), cfg.get("merged", False), model


def check(cfg: DictConfig) -> None:
    check_export(*_args(cfg))


def export(cfg: DictConfig) -> dict:
    result = export_checkpoint(*_args(cfg))
    print(f"LoRA weights: {result['lora']} (step {result['global_step']})")
    if "merged" in result:
        print(f"merged model folder: {result['merged']}")
    return result


HELP = """flipsketch-export: a training checkpoint -> pytorch_lora_weights.safetensors (+ a merged model folder).

Usage (Hydra overrides, key=value):
  flipsketch-export ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt
  flipsketch-export ckpt_path=... out=weights/my_model merged=true   # out/ is also a diffusers folder

Settings (conf/export.yaml):
  ckpt_path=FILE (required)  out=DIR (default <run>/export/<checkpoint name>)  merged=false
  model=... (default: the model recorded in the checkpoint, rebuilt by its registry name)
"""

main = cli_main("export", export, program="flipsketch-export", help_text=HELP, check=check)


if __name__ == "__main__":
    main()
