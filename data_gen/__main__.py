"""CLI: python -m data_gen out=DIR [sketches=[DIR,...]] [animations=[DIR,...]] [key=value ...]

Configured with Hydra from conf/data_gen.yaml. Bad input is one `error:` line and exit code 2.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from data_gen.build import SHIPPED_SKETCHES, GenConfig, generate
from data_gen.sources import AnimationInput
from data_gen.svg_io import Limits
from flipsketch.cli import hydra_cli
from flipsketch.errors import UserError


def _as_list(value, name: str) -> list:
    from flipsketch.checks import as_list

    return as_list(value, name)


def _animation(item) -> AnimationInput:
    if isinstance(item, dict):
        if "path" not in item or item["path"] in (None, ""):
            raise UserError("each animations entry needs a path: {path: DIR, caption: TEXT}")
        caption = item.get("caption")
        if caption is not None and not isinstance(caption, str):
            raise UserError("animations: caption must be text")
        return AnimationInput(Path(str(item["path"])), caption)
    if isinstance(item, list | tuple) or item in (None, ""):
        raise UserError("animations entries are folders or {path: DIR, caption: TEXT}")
    return AnimationInput(Path(str(item)))


_KEYS = {f.name for f in fields(GenConfig)}


def gen_config(raw: dict, prefix: str = "") -> GenConfig:
    """A plain mapping of data_gen settings -> a checked GenConfig (types, ranges, unknown keys)."""
    from difflib import get_close_matches

    from flipsketch.checks import as_bool, as_float, as_int, as_str

    raw = {k: v for k, v in raw.items() if k != "hydra"}
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        close = get_close_matches(str(unknown[0]), sorted(_KEYS), n=1)
        hint = f"; did you mean {prefix}{close[0]}?" if close else ""
        raise UserError(f"unknown data_gen setting {prefix}{unknown[0]}{hint}")
    limits = raw.get("limits") or {}
    if not isinstance(limits, dict):
        raise UserError(f"{prefix}limits must be a mapping")
    bad = sorted(set(limits) - {f.name for f in fields(Limits)})
    if bad:
        raise UserError(f"unknown data_gen setting {prefix}limits.{bad[0]}")
    sketches = raw.get("sketches")
    out = raw.get("out")
    if out in (None, ""):
        raise UserError("no output folder: pass out=DIR")
    defaults = GenConfig(out=Path("."))

    def get(key):
        return raw.get(key, getattr(defaults, key))

    stroke_width = get("stroke_width")
    return GenConfig(
        out=Path(as_str(out, f"{prefix}out")).expanduser(),
        sketches=(SHIPPED_SKETCHES,)
        if sketches is None
        else tuple(Path(as_str(p, f"{prefix}sketches")).expanduser() for p in _as_list(sketches, "sketches")),
        animations=tuple(_animation(a) for a in _as_list(raw.get("animations"), "animations")),
        exclude=tuple(as_str(x, f"{prefix}exclude") for x in _as_list(raw.get("exclude", list(defaults.exclude)), "exclude")),
        clips_per_sketch=as_int(get("clips_per_sketch"), f"{prefix}clips_per_sketch"),
        motion=as_str(get("motion"), f"{prefix}motion"),
        seed=as_int(get("seed"), f"{prefix}seed"),
        val_fraction=as_float(get("val_fraction"), f"{prefix}val_fraction"),
        frames=as_int(get("frames"), f"{prefix}frames"),
        fps=as_int(get("fps"), f"{prefix}fps"),
        size=as_int(get("size"), f"{prefix}size"),
        stroke_width=None if stroke_width is None else as_float(stroke_width, f"{prefix}stroke_width"),
        renderer=as_str(get("renderer"), f"{prefix}renderer"),
        workers=as_int(get("workers"), f"{prefix}workers"),
        progress=as_bool(get("progress"), f"{prefix}progress"),
        limits=Limits(
            max_file_bytes=as_int(
                limits.get("max_file_bytes", Limits.max_file_bytes), f"{prefix}limits.max_file_bytes"
            ),
            max_canvas=as_float(limits.get("max_canvas", Limits.max_canvas), f"{prefix}limits.max_canvas"),
            max_segments=as_int(
                limits.get("max_segments", Limits.max_segments), f"{prefix}limits.max_segments"
            ),
        ),
    )


def config_from(cfg: DictConfig) -> GenConfig:
    """Hydra config -> GenConfig, with user errors for missing or ill-typed values."""
    from flipsketch.checks import reject_nonfinite

    try:
        cfg.out  # noqa: B018 - raises when out=??? was not given
    except MissingMandatoryValue:
        raise UserError("no output folder: pass out=DIR") from None
    reject_nonfinite(cfg)
    raw = OmegaConf.to_container(cfg, resolve=True)
    gen = gen_config(raw)
    gen.validate()
    return gen


def check(cfg: DictConfig) -> None:
    """Before Hydra makes a run folder: settings, input folders, and the output folder."""
    from flipsketch.checks import check_out_dir

    gen = config_from(cfg)
    for folder in gen.sketches:
        if not folder.is_dir():
            raise UserError(f"sketch folder not found: {folder}")
    for item in gen.animations:
        if not item.path.is_dir():
            raise UserError(f"animation folder not found: {item.path}")
    check_out_dir(gen.out, "out")


def run(cfg: DictConfig) -> dict:
    gen = config_from(cfg)
    report = generate(gen)
    print(
        f"{report['clips']} clips in {gen.out} ({report['written']} new, {report['existing']} already done; "
        f"train {report['train']} / val {report['val']}); {len(report['skipped_sources'])} sources skipped, "
        f"{len(report['failed_clips'])} clips failed (see report.json); {report['frames_per_s']} frames/s"
    )
    return report


HELP = """flipsketch-data (python -m data_gen): SVG sketches -> animated, captioned raster clips for training.

Usage (Hydra overrides, key=value):
  flipsketch-data out=data/clips                       # the 17 shipped training sketches (8 evaluation ones left out)
  flipsketch-data out=DIR sketches=[MY_SVGS] clips_per_sketch=8 size=256 frames=24

Settings (conf/data_gen.yaml; data_gen/README.md):
  out=DIR (required)  sketches=[DIR,...] (null: the shipped set)  exclude=[heldout] (default: the 8 evaluation sketches; [] = none)
  animations=[DIR | {path: DIR, caption: TEXT}] (Live-Sketch outputs)  clips_per_sketch=4
  motion=auto|sway|wave|swim|walk|...  frames=24 fps=8 size=256 stroke_width=null
  renderer=cairo|cairosvg  workers=2  seed=0  val_fraction=0.1  progress=true
"""

main = hydra_cli("data_gen", run, check=check, help_text=HELP, program="flipsketch-data")


if __name__ == "__main__":
    main()
