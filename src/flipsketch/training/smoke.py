"""Small, fast training setups shared by the tests and the benchmark script.

cfg = compose_train(["experiment=tiny_smoke"], out_dir=tmp_path)
root = tiny_dataset(tmp_path / "data")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, open_dict


def compose_train(
    overrides: Sequence[str] = (), out_dir: str | Path | None = None, config_name: str = "train"
) -> DictConfig:
    """Compose the real train config (Hydra compose API), with every output under `out_dir`."""
    from ..cli import compose_config

    cfg = compose_config(config_name, list(overrides))
    if out_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(out_dir)
            cfg.paths.log_dir = str(out_dir)
            if "data_dir" in cfg.paths:
                cfg.paths.data_dir = str(Path(out_dir) / "data")
    return cfg


def tiny_dataset(
    root: str | Path, frames: int = 8, size: int = 64, clips_per_sketch: int = 1, seed: int = 0
) -> Path:
    """A data_gen dataset from the shipped sketches (about 25 clips; well under a second)."""
    from data_gen.build import GenConfig, generate

    root = Path(root)
    if not (root / "metadata.jsonl").is_file():
        generate(
            GenConfig(
                out=root,
                clips_per_sketch=clips_per_sketch,
                frames=frames,
                size=size,
                seed=seed,
                val_fraction=0.2,
                workers=1,
                progress=False,
            )
        )
    return root


def fast_overrides(dataset_root: str | Path, steps: int = 4, videos: bool = False) -> list[str]:
    """tiny_smoke on an existing dataset, no logger, `steps` optimizer steps; sample videos off unless asked."""
    return [
        "experiment=tiny_smoke",
        "logger=none",
        f"data.root={dataset_root}",
        "data.generate=null",
        f"trainer.max_steps={steps}",
        "trainer.val_check_interval=1000",
        f"callbacks.sample_videos.num_samples={1 if videos else 0}",
    ]
