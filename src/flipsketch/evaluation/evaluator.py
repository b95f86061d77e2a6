"""The evaluation loop: every (method, item, seed) -> video folder + metrics.json, resumable.

Layout: <samples_dir>/<benchmark>/<model or "baselines">/<method>-<settings hash>/<item>/seed<S>/
        animation.gif, animation.mp4, frames/NNN.png, meta.json, metrics.json
The folders hold each method's raw output (no post-processing). Scoring applies one policy to every
method alike (`ScoringPolicy`: frame count, binarise or grey, frame 0 in or out). A folder whose
metrics.json matches (same sketch bytes, settings hash, scorers and policy) is skipped; with another
scorer or policy it is rescored from its PNG frames without sampling again.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..atomic import clean_stale_temps, folder_digest, write_text
from ..metrics import ScoringPolicy, compute_all, t2v_name
from ..outputs import dumps_json, write_animation
from ..sketch import load_sketch
from .benchmark import BenchmarkItem
from .methods import Method

log = logging.getLogger(__name__)
METRIC_KEYS = ("s2v", "t2v", "chamfer", "motion", "flicker", "frame0_iou")


def write_json_atomic(path: Path, data: dict) -> None:
    """JSON via flipsketch.atomic: readers (and parallel sweep jobs) never see half a file."""
    write_text(path, dumps_json(data))


@dataclass
class Evaluator:
    ctx: object  # EvalContext
    methods: list[Method]
    items: list[BenchmarkItem]
    seeds: list[int]
    scorer: object  # ClipScorer: S2V (and T2V when t2v_scorer is None)
    root: Path  # <samples_dir>/<benchmark>
    fps: int = 10
    formats: tuple[str, ...] = ("gif", "mp4", "png")
    policy: ScoringPolicy = field(default_factory=ScoringPolicy)
    t2v_scorer: object = None  # XClipScorer, or None: per-frame CLIP T2V from `scorer`
    overwrite: bool = False
    batch_seeds: int = 1  # seeds of one item a FlipSketch variant samples in one pipeline call
    counts: dict = field(default_factory=lambda: {"generated": 0, "skipped": 0, "rescored": 0})
    _ready: set = field(default_factory=set)
    _batched: dict = field(
        default_factory=dict
    )  # seed -> (frames, seconds) sampled with the item's other seeds
    _scored: dict = field(default_factory=dict)  # (method, item) -> scored frames of the first seed
    select: object = None  # (method, item, seed) -> bool: the units to run (evaluation.shard); None: all

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
                self._batched = self._sample_together(m, item)
                for seed in self.seeds:
                    k += 1
                    if self.select is not None and not self.select(m, item, seed):
                        continue  # another shard's unit
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

    def _needs_sampling(self, m: Method, item: BenchmarkItem, seed: int) -> bool:
        folder = self.folder(m, item, seed)
        done = self._finished(folder, m, item)
        return done is None or (not self._same_scoring(done) and not (folder / "frames").is_dir())

    def _sample_together(self, m: Method, item: BenchmarkItem) -> dict[int, tuple[np.ndarray, float]]:
        """batch_seeds > 1: the seeds of `item` still to sample, `batch_seeds` per pipeline call
        (FlipSketch variants only); {seed: (frames, seconds per sample)}."""
        if self.batch_seeds <= 1 or m.kind != "variant":
            return {}
        todo = [s for s in self.seeds if self._needs_sampling(m, item, s)]
        out = {}
        for k in range(0, len(todo), self.batch_seeds):
            chunk = todo[k : k + self.batch_seeds]
            if len(chunk) < 2:
                continue  # one seed: the ordinary call
            t0 = time.perf_counter()
            import torch

            res = self.ctx.pipeline()(  # flipsketch.api: one generator per seed, as seeds=chunk draws
                prompt=item.prompt,
                image=item.sketch,
                generator=[torch.Generator().manual_seed(int(s)) for s in chunk],
                sampler=m.sampler,
                output_type="uint8",
            )
            seconds = float(res.stats.get("seconds", time.perf_counter() - t0)) / len(chunk)
            out.update({s: (res.frames[j], seconds) for j, s in enumerate(chunk)})
        return out

    def run_one(self, m: Method, item: BenchmarkItem, seed: int) -> dict:
        folder = self.folder(m, item, seed)
        clean_stale_temps(folder.parent)  # a killed run's hidden temp folders and files
        clean_stale_temps(folder)
        done = self._finished(folder, m, item)
        if done is not None and self._same_scoring(done):
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
        files = folder_digest(folder)  # checked when this sample is reused (metrics.json not included)
        files.pop("metrics.json", None)
        self.counts[status] += 1
        metrics, scored = self.score(item, frames)
        if seed == self.seeds[0]:
            self._scored[(m.name, item.id)] = scored
        record = {
            "method": m.name,
            "label": m.label,
            "kind": m.kind,
            "item": item.id,
            "prompt": item.prompt,
            "seed": seed,
            **metrics,
            "seconds": seconds,
            "frames": int(len(frames)),  # as the method made them (the saved video)
            "frames_scored": int(len(scored)),
            "size": int(frames.shape[1]),
            "policy": self.policy.to_dict(),
            "text_conditioned": m.text_conditioned,
            "fingerprint": m.fingerprint,
            "sketch": str(item.sketch),
            "sketch_sha": item.sha,
            "files_sha256": files,
        }
        write_json_atomic(folder / "metrics.json", record)
        return {**record, "folder": str(folder), "status": status}

    def _same_scoring(self, done: dict) -> bool:
        return (
            done.get("backbone") == self.scorer.backbone
            and done.get("t2v_scorer") == t2v_name(self.scorer, self.t2v_scorer)
            and done.get("policy") == self.policy.to_dict()
        )

    def _finished(self, folder: Path, m: Method, item: BenchmarkItem) -> dict | None:
        path = folder / "metrics.json"
        if self.overwrite or not path.is_file():
            return None
        try:
            done = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        ok = (
            isinstance(done, dict)
            and done.get("fingerprint") == m.fingerprint
            and done.get("sketch_sha") == item.sha
        )
        if ok and not self._intact(folder, done):
            log.warning(
                "cached sample %s fails its content check (truncated or replaced): regenerating", folder
            )
            return None
        return done if ok else None

    def _intact(self, folder: Path, done: dict) -> bool:
        """The cached sample is byte for byte what was written: every file recorded in
        metrics.json (`files_sha256`) has its hash, and every requested format is among them.
        A record without hashes (an older cache) cannot be trusted and is regenerated."""
        recorded = done.get("files_sha256")
        if not isinstance(recorded, dict) or not recorded:
            return False
        want = {"gif": "animation.gif", "mp4": "animation.mp4", "png": "frames/000.png"}
        if any(want[f] not in recorded for f in self.formats if f in want):
            return False
        now = folder_digest(folder)
        now.pop("metrics.json", None)
        return now == recorded

    @staticmethod
    def _saved_frames(folder: Path) -> np.ndarray | None:
        from ..baselines.frames_io import read_image_folder

        return read_image_folder(folder / "frames") if (folder / "frames").is_dir() else None

    def generate(self, m: Method, item: BenchmarkItem, seed: int) -> tuple[np.ndarray, float]:
        if seed in self._batched:
            return self._batched.pop(seed)  # sampled with the item's other seeds
        ctx, t0 = self.ctx, time.perf_counter()
        if m.kind == "variant":
            import torch

            res = ctx.pipeline()(  # flipsketch.api, seeded as the command line's seeds=[seed]
                prompt=item.prompt,
                image=item.sketch,
                generator=torch.Generator().manual_seed(int(seed)),
                sampler=m.sampler,
                output_type="uint8",
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
        return np.asarray(frames), seconds  # raw: the scoring policy post-processes every method alike

    def scored_frames(self, frames: np.ndarray) -> np.ndarray:
        """A method's raw clip -> what the metrics see: square, then `policy` (frame count, binarise/grey)."""
        frames = np.asarray(frames)
        if frames.shape[2] != frames.shape[1]:  # non-square output: a square like the sketch
            from ..baselines import fit_frames

            frames = fit_frames(frames, int(frames.shape[1]))
        return self.policy.apply(frames)

    def score(self, item: BenchmarkItem, frames: np.ndarray) -> tuple[dict, np.ndarray]:
        """(metrics, the scored frames) of one raw clip."""
        t0 = time.perf_counter()
        scored = self.scored_frames(frames)
        sketch = load_sketch(item.sketch, int(scored.shape[1]))
        out = compute_all(
            self.scorer,
            sketch,
            item.prompt,
            scored,
            skip_first=self.policy.skip_first,
            t2v_scorer=self.t2v_scorer,
        )
        out["score_seconds"] = time.perf_counter() - t0
        return out, scored

    def contact_sheets(self, out_dir: Path) -> dict[str, Path]:
        """Per benchmark item `<out_dir>/<item>.png`: one row per method (first seed), the sketch then
        the frames exactly as scored (after the policy's frame count and post-processing)."""
        from ..pictures import contact_sheet

        seed, out = self.seeds[0], {}
        for item in self.items:
            rows = []
            for m in self.methods:
                scored = self._scored.get((m.name, item.id))
                if scored is None:  # skipped (finished earlier): read its frames back
                    raw = self._saved_frames(self.folder(m, item, seed))
                    scored = None if raw is None else self.scored_frames(raw)
                if scored is None:
                    continue
                side = int(scored.shape[1])
                sketch = np.asarray(load_sketch(item.sketch, side).convert("L"))
                rows.append((m.label[:25], np.concatenate([sketch[None], scored])))
            if rows:
                title = (
                    f"{item.id}: {item.prompt!r} (seed {seed}; first column: the sketch; frames as scored)"
                )
                scale = max(1, 128 // int(rows[0][1].shape[1]))  # frames drawn at least 128 px
                out[item.id] = contact_sheet(Path(out_dir) / f"{item.id}.png", [(title, rows)], scale=scale)
        return out
