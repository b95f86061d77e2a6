"""CLI: python -m data_gen out=DIR [sketches=[DIR,...]] [animations=[DIR,...]] [key=value ...]

Configured with Hydra from conf/data_gen.yaml. Bad input is one `error:` line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from data_gen.build import SHIPPED_SKETCHES, GenConfig, generate
from data_gen.sources import AnimationInput
from data_gen.svg_io import Limits
from flipsketch.cli import hydra_cli
from flipsketch.errors import UserError


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _animation(item) -> AnimationInput:
    if isinstance(item, dict):
        if "path" not in item:
            raise UserError("each animations entry needs a path: {path: DIR, caption: TEXT}")
        return AnimationInput(Path(str(item["path"])), item.get("caption"))
    return AnimationInput(Path(str(item)))


def config_from(cfg: DictConfig) -> GenConfig:
    """Hydra config -> GenConfig, with user errors for missing or ill-typed values."""
    try:
        out = cfg.out
    except MissingMandatoryValue as exc:
        raise UserError("no output folder: pass out=DIR") from exc
    raw = OmegaConf.to_container(cfg, resolve=True)
    raw.pop("hydra", None)
    sketches = raw.get("sketches")
    try:
        return GenConfig(
            out=Path(str(out)),
            sketches=(SHIPPED_SKETCHES,)
            if sketches is None
            else tuple(Path(str(p)) for p in _as_list(sketches)),
            animations=tuple(_animation(a) for a in _as_list(raw.get("animations"))),
            exclude=tuple(str(x) for x in _as_list(raw.get("exclude"))),
            clips_per_sketch=int(raw["clips_per_sketch"]),
            motion=str(raw["motion"]),
            seed=int(raw["seed"]),
            val_fraction=float(raw["val_fraction"]),
            frames=int(raw["frames"]),
            fps=int(raw["fps"]),
            size=int(raw["size"]),
            stroke_width=None if raw.get("stroke_width") is None else float(raw["stroke_width"]),
            renderer=str(raw["renderer"]),
            workers=int(raw["workers"]),
            progress=bool(raw.get("progress", True)),
            limits=Limits(**{k: type(getattr(Limits(), k))(v) for k, v in (raw.get("limits") or {}).items()}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"bad data_gen config value: {exc}") from exc


def run(cfg: DictConfig) -> dict:
    gen = config_from(cfg)
    report = generate(gen)
    print(
        f"{report['clips']} clips in {gen.out} ({report['written']} new, {report['existing']} already done; "
        f"train {report['train']} / val {report['val']}); {len(report['skipped_sources'])} sources skipped, "
        f"{len(report['failed_clips'])} clips failed (see report.json); {report['frames_per_s']} frames/s"
    )
    return report


main = hydra_cli("data_gen", run)


if __name__ == "__main__":
    main()
