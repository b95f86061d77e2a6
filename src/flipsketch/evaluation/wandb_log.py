"""One W&B run per evaluation (WANDB_MODE decides; offline when it is unset): per-item table with the videos,
the results table, the contact sheets as images, and `<method>/<metric>` means in the run summary. Built from `cfg.logger.wandb`
(conf/logger/wandb.yaml, shared with training); `logger=none` or `logger=csv` log nothing here."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import OmegaConf

from ..tracking import wandb_mode
from .table import COLUMNS, ITEM_FIELDS, flat_differences


class WandbRun:
    def __init__(self, run):
        self.run = run

    @classmethod
    def start(cls, cfg, run_dir: Path, name: str) -> WandbRun | None:
        node = (cfg.get("logger") or {}).get("wandb")
        if not node:
            return None
        import wandb

        run_dir.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=str(node.get("project") or "flipsketch"),
            name=name,
            dir=str(node.get("save_dir") or run_dir),
            mode=wandb_mode(node.get("offline")),  # WANDB_MODE when set, else offline
            job_type="eval",
            group=str(cfg.benchmark.get("name") or "eval"),
            tags=[str(t) for t in (cfg.get("tags") or [])],
            config=OmegaConf.to_container(cfg, resolve=True),
        )
        return cls(run)

    def log(self, rows: list[dict], summary: list[dict], sheets: dict | None = None) -> None:
        import wandb

        items = wandb.Table(columns=[*ITEM_FIELDS, "sketch_image", "video"])
        for r in rows:
            items.add_data(
                *[r.get(k) for k in ITEM_FIELDS], wandb.Image(str(r["sketch"])), _video(Path(r["folder"]))
            )
        stat_cols = [f"{k}_{s}" for k, _, _ in COLUMNS for s in ("mean", "std", "lo", "hi")]
        diff_cols = [f"{k}_diff{s}" for k, _, _ in COLUMNS for s in ("", "_lo", "_hi", "_n")]
        results = wandb.Table(
            columns=["method", "label", "n", "backbone", "t2v_scorer", *stat_cols, "seconds_mean", *diff_cols]
        )
        for s in summary:
            diffs = flat_differences(s)
            results.add_data(
                s["method"],
                s["label"],
                s["n"],
                s["backbone"],
                s["t2v_scorer"],
                *[s[c] for c in stat_cols],
                s["seconds_mean"],
                *[diffs.get(c) for c in diff_cols],
            )
        videos: dict[str, list] = {}
        for r in rows:  # also straight in the run's media (files/media/videos), one panel per method
            v = _video(Path(r["folder"]))
            if v is not None:
                videos.setdefault(f"videos/{r['method']}", []).append(v)
        pictures = {  # one contact sheet per benchmark item: the sketch, then a row per method
            f"contact_sheets/{item}": wandb.Image(str(path), caption=item)
            for item, path in (sheets or {}).items()
        }
        self.run.log({"eval/items": items, "eval/results": results, **videos, **pictures})
        for s in summary:
            for key, _, _ in COLUMNS:
                if not math.isnan(s[f"{key}_mean"]):
                    self.run.summary[f"{s['method']}/{key}"] = s[f"{key}_mean"]
                    self.run.summary[f"{s['method']}/{key}_std"] = s[f"{key}_std"]
                    self.run.summary[f"{s['method']}/{key}_lo"] = s[f"{key}_lo"]
                    self.run.summary[f"{s['method']}/{key}_hi"] = s[f"{key}_hi"]
            for name, value in flat_differences(s).items():  # paired difference from the reference row
                self.run.summary[f"{s['method']}/{name}"] = value
        self.run.summary["backbone"] = ", ".join(sorted({s["backbone"] for s in summary}))
        self.run.summary["t2v_scorer"] = ", ".join(sorted({s["t2v_scorer"] for s in summary}))

    def finish(self) -> None:
        self.run.finish()


def _video(folder: Path):
    """The clip by file path (no moviepy needed); a PNG frame strip when no GIF/MP4 was written."""
    import wandb

    for name in ("animation.gif", "animation.mp4"):
        if (folder / name).is_file():
            return wandb.Video(str(folder / name))
    frames = sorted((folder / "frames").glob("*.png")) if (folder / "frames").is_dir() else []
    if not frames:
        return None
    import numpy as np
    from PIL import Image

    strip = np.concatenate([np.asarray(Image.open(f).convert("RGB")) for f in frames], axis=1)
    return wandb.Image(strip)
