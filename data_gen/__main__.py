"""CLI: python -m data_gen out=DIR [sketches=[DIR,...]] [animations=[DIR,...]] [key=value ...]

Configured with Hydra from conf/data_gen.yaml. Bad input is one `error:` line and exit code 2.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from data_gen.build import GenConfig, generate
from data_gen.settings import gen_config, gen_defaults, register_gen_defaults
from flipsketch.cli import cli_main
from flipsketch.errors import UserError


def config_from(cfg: DictConfig) -> GenConfig:
    """Hydra config -> GenConfig, with user errors for missing or ill-typed values."""
    from flipsketch.checks import reject_nonfinite

    try:
        cfg.out  # noqa: B018 - raises when out=??? was not given
    except MissingMandatoryValue:
        raise UserError("no output folder: pass out=DIR") from None
    reject_nonfinite(cfg)
    raw = OmegaConf.to_container(cfg, resolve=True)
    raw.pop("threads", None)  # the CLI's torch thread request (flipsketch.threads), not a GenConfig field
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


def _help() -> str:
    d = gen_defaults()
    return f"""flipsketch-data (python -m data_gen): SVG sketches -> animated, captioned raster clips for training.

Usage (Hydra overrides, key=value):
  flipsketch-data out=data/clips                       # the 17 shipped training sketches (8 evaluation ones left out)
  flipsketch-data out=DIR sketches=[MY_SVGS] clips_per_sketch=8 size=256 frames=24

Settings (data_gen.build.GenConfig; conf/data_gen.yaml; data_gen/README.md), with their defaults:
  out=DIR (required)  sketches=[DIR,...] (null: the shipped set)  exclude=[heldout] (the 8 evaluation sketches; [] = none)
  animations=[DIR | {{path: DIR, caption: TEXT}}] (Live-Sketch outputs)  clips_per_sketch={d["clips_per_sketch"]}
  motion={d["motion"]}|sway|wave|swim|walk|...  frames={d["frames"]} fps={d["fps"]} size={d["size"]} stroke_width=null
  renderer={d["renderer"]}|cairosvg  workers={d["workers"]}  seed={d["seed"]}  val_fraction={d["val_fraction"]}  progress={str(d["progress"]).lower()}
"""


HELP = _help()
register_gen_defaults()  # before cli_main composes conf/data_gen.yaml

main = cli_main("data_gen", run, program="flipsketch-data", help_text=HELP, check=check)


if __name__ == "__main__":
    main()
