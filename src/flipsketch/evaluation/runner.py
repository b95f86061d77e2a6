"""The evaluation loop: every (method, item, seed) -> video folder + metrics.json, resumable.

Layout: <samples_dir>/<benchmark>/<model or "baselines">/<method>-<settings hash>/<item>/seed<S>/
        animation.gif, animation.mp4, frames/NNN.png, meta.json, metrics.json
A folder whose metrics.json matches (same sketch bytes, same settings hash, same CLIP backbone) is
skipped; with another backbone it is rescored from its PNG frames without sampling again.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..metrics import compute_all
from ..outputs import binarize, dumps_json, write_animation
from ..sketch import load_sketch
from .benchmark import BenchmarkItem
from .methods import Method

log = logging.getLogger(__name__)
METRIC_KEYS = ("s2v", "t2v", "chamfer", "motion", "flicker", "frame0_iou")


def write_json_atomic(path: Path, data: dict) -> None:
    """Write via a unique temp file + rename: readers (and parallel sweep jobs) never see half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(dumps_json(data))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Evaluator:
    ctx: object  # EvalContext
    methods: list[Method]
    items: list[BenchmarkItem]
    seeds: list[int]
    scorer: object  # ClipScorer
    root: Path  # <samples_dir>/<benchmark>
    fps: int = 10
    formats: tuple[str, ...] = ("gif", "mp4", "png")
    skip_first: bool = False
    overwrite: bool = False
    counts: dict = field(default_factory=lambda: {"generated": 0, "skipped": 0, "rescored": 0})
    _ready: set = field(default_factory=set)

    def method_dir(self, m: Method) -> Path:
        return self.root / (self.ctx.model_tag() if m.uses_model else "baselines") / m.folder_name

    def folder(self, m: Method, item: BenchmarkItem, seed: int) -> Path:
        return self.method_dir(m) / item.id / f"seed{seed}"

    def run(self) -> list[dict]:
        total, rows, k = len(self.methods) * len(self.items) * len(self.seeds), [], 0
        for m in self.methods:
            self.method_dir(m).mkdir(parents=True, exist_ok=True)
            write_json_atomic(
                self.method_dir(m) / "settings.json", {"method": m.name, "label": m.label, **m.settings}
            )
            for item in self.items:
                for seed in self.seeds:
                    k += 1
                    row = self.run_one(m, item, seed)
                    log.info(
                        "[%d/%d] %s %s seed%d: S2V %.3f T2V %.3f (%s, %.1f s)",
                        k,
                        total,
                        m.name,
                        item.id,
                        seed,
                        row["s2v"],
                        row["t2v"],
                        row["status"],
                        row["seconds"],
                    )
                    rows.append(row)
        return rows

    def run_one(self, m: Method, item: BenchmarkItem, seed: int) -> dict:
        folder = self.folder(m, item, seed)
        done = self._finished(folder, m, item)
        if done is not None and done.get("backbone") == self.scorer.backbone:
            self.counts["skipped"] += 1
            return {**done, "folder": str(folder), "status": "skipped"}
        frames = self._saved_frames(folder) if done is not None else None
        if frames is not None:
            raw = done.get("seconds")
            seconds = float(raw) if isinstance(raw, int | float) else float("nan")
            status = "rescored"
        else:
            frames, seconds = self.generate(m, item, seed)
            meta = {
                "method": m.name,
                "label": m.label,
                "kind": m.kind,
                "item": item.to_dict(),
                "seed": seed,
                "fingerprint": m.fingerprint,
                "settings": m.settings,
                "tau": m.sampler.taus_used() if m.sampler is not None else None,  # the tau actually used
                # the dtype the FlipSketch model ran in (baselines with their own weights: see settings)
                "dtype": str(self.ctx.dtype).replace("torch.", "") if m.uses_model else None,
                "seconds": seconds,
                "flipsketch_version": __version__,
            }
            write_animation(folder, frames, meta, self.fps, self.formats)
            status = "generated"
        self.counts[status] += 1
        metrics = self.score(item, frames)
        record = {
            "method": m.name,
            "label": m.label,
            "kind": m.kind,
            "item": item.id,
            "prompt": item.prompt,
            "seed": seed,
            **metrics,
            "seconds": seconds,
            "frames": int(len(frames)),
            "size": int(frames.shape[1]),
            "text_conditioned": m.text_conditioned,
            "fingerprint": m.fingerprint,
            "sketch": str(item.sketch),
            "sketch_sha": item.sha,
        }
        write_json_atomic(folder / "metrics.json", record)
        return {**record, "folder": str(folder), "status": status}

    def _finished(self, folder: Path, m: Method, item: BenchmarkItem) -> dict | None:
        path = folder / "metrics.json"
        if self.overwrite or not path.is_file():
            return None
        try:
            done = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        ok = done.get("fingerprint") == m.fingerprint and done.get("sketch_sha") == item.sha
        return done if ok else None

    @staticmethod
    def _saved_frames(folder: Path) -> np.ndarray | None:
        from ..baselines.frames_io import read_image_folder

        return read_image_folder(folder / "frames") if (folder / "frames").is_dir() else None

    def generate(self, m: Method, item: BenchmarkItem, seed: int) -> tuple[np.ndarray, float]:
        ctx, t0 = self.ctx, time.perf_counter()
        if m.kind == "variant":
            res = ctx.pipeline()(
                item.sketch, item.prompt, seeds=[seed], config=m.sampler, progress=ctx.progress
            )
            frames, seconds = res.frames[0], float(res.stats.get("seconds", time.perf_counter() - t0))
        else:
            b = m.baseline
            if m.name not in self._ready:
                b.setup(ctx)
                self._ready.add(m.name)
            sampler = ctx.sampler_dict()
            image = load_sketch(item.sketch, ctx.size) if b.image_conditioned else None
            frames = b.generate(
                image,
                item.prompt,
                num_frames=int(b.num_frames or sampler["num_frames"]),
                size=ctx.size,
                steps=int(b.steps or sampler["num_inference_steps"]),
                guidance=float(sampler["guidance_scale"] if b.guidance is None else b.guidance),
                seed=int(seed),
                item=item,
            )
            seconds = time.perf_counter() - t0
        frames = np.asarray(frames)
        if m.binarize:
            frames = binarize(frames, int(ctx.cfg.output.binarize_upscale))
        return frames, seconds

    def score(self, item: BenchmarkItem, frames: np.ndarray) -> dict:
        side = int(frames.shape[1])
        sketch = load_sketch(item.sketch, side)
        if frames.shape[2] != side:  # non-square output: score it at a square size like the sketch
            from ..baselines import fit_frames

            frames = fit_frames(frames, side)
        t0 = time.perf_counter()
        out = compute_all(self.scorer, sketch, item.prompt, frames, skip_first=self.skip_first)
        out["score_seconds"] = time.perf_counter() - t0
        return out
