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
    gen = gen_config(raw)
    gen.validate()
    return gen


def check(cfg: DictConfig) -> None:
    """Before Hydra makes a run folder: settings, input folders, and the output folder."""
    from flipsketch.checks import check_out_dir, check_own_folder

    gen = config_from(cfg)
    for folder in gen.sketches:
        if not folder.is_dir():
            raise UserError(f"sketch folder not found: {folder}")
    for item in gen.animations:
        if not item.path.is_dir():
            raise UserError(f"animation folder not found: {item.path}")
    check_out_dir(gen.out, "out")
    check_own_folder(gen.out, "out", legacy=("metadata.jsonl", "report.json"))  # never the user's folder


def run(cfg: DictConfig) -> dict:
    from flipsketch.checks import RUN_MARKER, mark_own_folder

    gen = config_from(cfg)
    created = not gen.out.exists()
    mark_own_folder(gen.out, "flipsketch-data")
    try:
        report = generate(gen)
    except UserError:  # refused (e.g. no usable inputs): leave the folder as it was
        left = [p.name for p in gen.out.iterdir()] if gen.out.is_dir() else []
        if left == [RUN_MARKER]:
            (gen.out / RUN_MARKER).unlink()
            if created:
                gen.out.rmdir()
        raise
    print(
        f"{report['clips']} clips in {gen.out} ({report['written']} new, {report['existing']} already done; "
        f"train {report['train']} / val {report['val']}); {len(report['skipped_sources'])} sources skipped, "
        f"{len(report['failed_clips'])} clips failed (see report.json); {report['frames_per_s']} frames/s"
    )
    failed = report["failed_clips"]
    if failed:  # a partial dataset is no success: exit non-zero (a rerun retries only these clips)
        first = failed[0]
        raise UserError(
            f"{len(failed)} of {len(failed) + report['clips']} clips failed (first: {first['id']}: "
            f"{first['reason']}); the {report['clips']} others are in {gen.out}, listed in report.json; "
            "rerun to retry the failed ones"
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
  shard_index={d["shard_index"]} shard_count={d["shard_count"]} (one shard of a SLURM array; the same command without them merges: docs/scale.md)
"""


HELP = _help()
register_gen_defaults()  # before cli_main composes conf/data_gen.yaml

main = cli_main("data_gen", run, program="flipsketch-data", help_text=HELP, check=check)


if __name__ == "__main__":
    main()
