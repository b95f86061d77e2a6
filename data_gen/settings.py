"""Data_gen settings from a plain mapping (a Hydra config, or `data.generate` of a training run)
-> a checked `GenConfig`: types, ranges, unknown keys, each refused in one `UserError` line."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from data_gen.build import SHIPPED_SKETCHES, GenConfig
from data_gen.sources import AnimationInput
from data_gen.svg_io import Limits
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
GEN_DEFAULTS = "data_gen_defaults"  # the ConfigStore node conf/data_gen.yaml starts from


def gen_defaults() -> dict:
    """GenConfig's defaults as the plain settings the CLI takes: the one place they are written
    (conf/data_gen.yaml starts from this node, `--help` prints it)."""
    from dataclasses import asdict

    d = GenConfig(out=Path("."))
    node = {f.name: getattr(d, f.name) for f in fields(GenConfig) if f.name not in ("out", "limits")}
    node["out"] = "???"  # required
    node["sketches"] = None if d.sketches == (SHIPPED_SKETCHES,) else [str(p) for p in d.sketches]
    node["animations"] = [str(a.path) for a in d.animations]
    node["exclude"] = list(d.exclude)
    node["limits"] = asdict(d.limits)
    return node


def register_gen_defaults() -> None:
    """Store `gen_defaults()` in Hydra's ConfigStore (before composing conf/data_gen.yaml). Untyped,
    so a mistyped value reaches gen_config and its one-line error."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=GEN_DEFAULTS, node=gen_defaults(), provider="data_gen")


def _threads(value, key: str) -> int | str:
    from flipsketch.threads import parse_threads

    n = parse_threads(value, key)
    return "auto" if n is None else n


def gen_config(raw: dict, prefix: str = "") -> GenConfig:
    """A plain mapping of data_gen settings -> a checked GenConfig (types, ranges, unknown keys)."""
    from difflib import get_close_matches

    from flipsketch.checks import MAX_SEED, as_bool, as_float, as_int, as_str

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
        exclude=tuple(
            as_str(x, f"{prefix}exclude")
            for x in _as_list(raw.get("exclude", list(defaults.exclude)), "exclude")
        ),
        clips_per_sketch=as_int(get("clips_per_sketch"), f"{prefix}clips_per_sketch"),
        motion=as_str(get("motion"), f"{prefix}motion"),
        seed=as_int(get("seed"), f"{prefix}seed", 0, MAX_SEED),
        val_fraction=as_float(get("val_fraction"), f"{prefix}val_fraction"),
        frames=as_int(get("frames"), f"{prefix}frames"),
        fps=as_int(get("fps"), f"{prefix}fps"),
        size=as_int(get("size"), f"{prefix}size"),
        stroke_width=None if stroke_width is None else as_float(stroke_width, f"{prefix}stroke_width"),
        renderer=as_str(get("renderer"), f"{prefix}renderer"),
        workers=as_int(get("workers"), f"{prefix}workers"),
        progress=as_bool(get("progress"), f"{prefix}progress"),
        shard_index=as_int(get("shard_index"), f"{prefix}shard_index"),
        shard_count=as_int(get("shard_count"), f"{prefix}shard_count"),
        threads=_threads(get("threads"), f"{prefix}threads"),
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
