"""Build a clip dataset: discover sources, animate + rasterise in parallel, write atomically.

Layout of the output folder:
    clips/<id>.npy    uint8 (T, H, W), black strokes on white
    clips/<id>.json   sidecar: the clip's metadata row (written after the .npy: it marks "done")
    metadata.jsonl    one row per clip of this run, in a stable order
    report.json       counts, timing, and every skipped source / failed clip with the reason
A rerun with the same settings skips finished clips, rebuilds missing ones and removes stray temp
files; a changed setting changes a clip's fingerprint, so that clip is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_gen.motion import ALIASES, PROGRAMS, animate, program_for_caption
from data_gen.raster import RENDERERS, make_renderer, render_clip
from data_gen.sources import AnimationInput, Source, animation_sources, static_sources, unique_keys
from data_gen.svg_io import Limits, SvgError, read_svg_file
from flipsketch import atomic
from flipsketch.errors import DiskFullError, UserError, as_disk_full

SHIPPED_SKETCHES = Path(__file__).resolve().parent / "sketches"
# The shipped sketches kept for evaluation (conf/benchmark/shipped.yaml `only`): never trained on by default.
HELDOUT_SKETCHES = ("cat", "fish", "bird", "star", "car", "flag", "balloon", "flower")
HELDOUT = "heldout"  # the `exclude` entry that names them (by content, wherever the files are)
CLIPS = "clips"


@dataclass(frozen=True)
class GenConfig:
    out: Path
    sketches: tuple[Path, ...] = (SHIPPED_SKETCHES,)
    animations: tuple[AnimationInput, ...] = ()
    # sketch file stems to leave out; "heldout" = any file identical to one of the shipped held-out
    # evaluation sketches (HELDOUT_SKETCHES), so the default dataset never trains on the benchmark
    exclude: tuple[str, ...] = (HELDOUT,)
    clips_per_sketch: int = 4
    motion: str = "auto"
    seed: int = 0
    val_fraction: float = 0.1
    frames: int = 24
    fps: int = 8
    size: int = 256
    stroke_width: float | None = None
    renderer: str = "cairo"
    workers: int = 2
    progress: bool = True
    limits: Limits = field(default_factory=Limits)
    # one shard of a bigger run (e.g. a SLURM array task): every shard_count-th source, its clips in the
    # shared out/clips/, its rows in metadata.shard-<i>-of-<n>.jsonl; the same command without the
    # shard settings then merges (checks every clip, writes the one metadata.jsonl). docs/scale.md
    shard_index: int = 0
    shard_count: int = 1
    # torch CPU threads of the command line (flipsketch.threads; auto: the cores free at start)
    threads: int | str = "auto"

    def validate(self) -> None:
        from flipsketch.checks import as_bool, as_float, as_int

        for name, lo, hi in (
            ("clips_per_sketch", 1, 10_000),
            ("frames", 1, 10_000),
            ("fps", 1, 1000),
            ("size", 8, None),
            ("workers", 1, 256),
            ("seed", 0, None),
            ("shard_count", 1, 1_000_000),
            ("shard_index", 0, None),
        ):
            as_int(getattr(self, name), name, lo, hi)
        as_float(self.val_fraction, "val_fraction")
        as_bool(self.progress, "progress")
        if self.stroke_width is not None:
            as_float(self.stroke_width, "stroke_width")
        as_int(self.limits.max_file_bytes, "limits.max_file_bytes", 1)
        as_float(self.limits.max_canvas, "limits.max_canvas", 1.0)
        as_int(self.limits.max_segments, "limits.max_segments", 1)
        if not isinstance(self.motion, str) or not isinstance(self.renderer, str):
            raise UserError("motion and renderer must be names")
        if self.motion != "auto" and ALIASES.get(self.motion, self.motion) not in PROGRAMS:
            raise UserError(f"unknown motion {self.motion!r}; use auto or one of: {', '.join(PROGRAMS)}")
        if self.renderer not in RENDERERS:
            raise UserError(f"unknown renderer {self.renderer!r}; use one of: {', '.join(RENDERERS)}")
        for name in ("clips_per_sketch", "frames", "fps", "size", "workers"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.size > self.limits.max_canvas:
            raise UserError(f"size must be <= {self.limits.max_canvas:g} (got {self.size})")
        if self.shard_index >= self.shard_count:
            raise UserError(
                f"shard_index must be in [0, shard_count={self.shard_count}), got {self.shard_index}"
            )
        if not 0 <= self.val_fraction < 1:
            raise UserError(f"val_fraction must be in [0, 1) (got {self.val_fraction})")
        if self.stroke_width is not None and not 0 < self.stroke_width <= self.size:
            raise UserError(f"stroke_width must be positive (got {self.stroke_width})")


@dataclass(frozen=True)
class ClipSpec:
    clip_id: str
    program: str
    seed: int
    split: str


@dataclass(frozen=True)
class Task:
    source: Source
    clips: tuple[ClipSpec, ...]
    frames: int
    fps: int
    size: int
    stroke_width: float | None
    renderer: str
    limits: Limits
    clips_dir: Path
    parsed: tuple = ()  # the source's Sketch (static) or frame Sketches (live_sketch), read in plan()
    sha256: str | None = None  # of a static source's file, read once in plan()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def heldout_hashes() -> set[str]:
    """sha256 of the shipped held-out evaluation sketches (the files themselves, not their names)."""
    return {file_sha256(p) for stem in HELDOUT_SKETCHES if (p := SHIPPED_SKETCHES / f"{stem}.svg").is_file()}


def clip_seed(seed: int, key: str, variant: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}:{variant}".encode(), digest_size=4).digest(), "big")


def assign_splits(keys: list[str], seed: int, val_fraction: float) -> dict[str, str]:
    """Split by source (all clips of a sketch share a split), deterministic from the seed."""
    keys = sorted(keys)
    n_val = round(len(keys) * val_fraction)
    if val_fraction > 0 and len(keys) >= 2:
        n_val = min(max(n_val, 1), len(keys) - 1)
    order = np.random.default_rng(seed).permutation(len(keys))
    val = {keys[i] for i in order[:n_val]}
    return {k: "val" if k in val else "train" for k in keys}


def _fingerprint(task: Task, spec: ClipSpec) -> str:
    files = task.source.frames or (task.source.path,)
    stats = []
    for f in files:
        try:
            st = f.stat()
            stats.append([st.st_size, st.st_mtime_ns])
        except OSError:
            stats.append(None)
    blob = json.dumps(
        [
            str(task.source.path),
            stats,
            spec.program,
            spec.seed,
            task.frames,
            task.size,
            task.stroke_width,
            task.renderer,
            asdict(task.limits),
        ],
        sort_keys=True,
    )
    return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


def _record(task: Task, spec: ClipSpec, fingerprint: str, source_frames: int | None) -> dict:
    rec = {
        "id": spec.clip_id,
        "clip": f"{CLIPS}/{spec.clip_id}.npy",
        "caption": task.source.caption,
        "source": str(task.source.path),
        "source_kind": task.source.kind,
        **({"source_sha256": task.sha256} if task.sha256 else {}),
        "motion": spec.program,
        "seed": spec.seed,
        "frames": task.frames,
        "size": task.size,
        "height": task.size,
        "width": task.size,
        "fps": task.fps,
        "split": spec.split,
        "fingerprint": fingerprint,
    }
    if source_frames is not None:
        rec["source_frames"] = source_frames
    return rec


def _finished(task: Task, spec: ClipSpec, fingerprint: str) -> dict | None:
    side = task.clips_dir / f"{spec.clip_id}.json"
    if not side.is_file() or not (task.clips_dir / f"{spec.clip_id}.npy").is_file():
        return None
    try:
        rec = json.loads(side.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("fingerprint") != fingerprint:
        return None
    if rec.get("split") != spec.split or rec.get("caption") != task.source.caption:
        rec.update(split=spec.split, caption=task.source.caption)  # cheap fix-up, the clip stays
        atomic.write_text(side, json.dumps(rec) + "\n")
    return rec


_RENDERERS: dict = {}


def _renderer(task: Task):
    key = (task.renderer, task.size, task.stroke_width)
    if key not in _RENDERERS:
        _RENDERERS[key] = make_renderer(*key)
    return _RENDERERS[key]


def read_source(src: Source, limits: Limits) -> tuple:
    """Parse a source's SVG file(s); raises SvgError with the reason."""
    if src.kind == "static":
        return (read_svg_file(src.path, limits, root=src.root),)
    return tuple(read_svg_file(f, limits, root=src.root) for f in src.frames)


def _frames_for(task: Task, spec: ClipSpec, loaded: dict) -> np.ndarray:
    src, render = task.source, _renderer(task)
    if "sketches" not in loaded:
        loaded["sketches"] = task.parsed or read_source(src, task.limits)
    if src.kind == "static":
        sketch = loaded["sketches"][0]
        return render_clip(sketch, animate(sketch, spec.program, task.frames, spec.seed), render)
    sketches = loaded["sketches"]
    pick = np.round(np.linspace(0, len(sketches) - 1, task.frames)).astype(int)  # resample to T frames
    return np.stack([render(sketches[i]) for i in pick])


def check_ink(clip: np.ndarray) -> None:
    """A clip must show the drawing: one with no ink at all (strokes off the canvas, a width that
    rendered as nothing) or solid ink is refused, never written as training data."""
    if not (clip < 255).any():
        raise SvgError("renders as a blank white clip (no ink on the canvas)")
    if not (clip > 0).any():
        raise SvgError("renders as solid ink (the whole canvas black)")


def process(task: Task) -> list[dict]:
    """Worker: build every clip of one source. Never raises; reports per-clip outcomes."""
    results, loaded = [], {}
    src_frames = len(task.source.frames) if task.source.kind == "live_sketch" else None
    for spec in task.clips:
        fp = _fingerprint(task, spec)
        try:
            if rec := _finished(task, spec, fp):
                results.append({"status": "existing", "id": spec.clip_id, "record": rec})
                continue
            with np.errstate(all="raise"):  # an overflow is this clip's failure, not a warning
                clip = _frames_for(task, spec, loaded)
            check_ink(clip)
            rec = _record(task, spec, fp, src_frames)
            atomic.save_npy(task.clips_dir / f"{spec.clip_id}.npy", clip)
            atomic.write_text(task.clips_dir / f"{spec.clip_id}.json", json.dumps(rec) + "\n")
            results.append({"status": "written", "id": spec.clip_id, "record": rec})
        except SvgError as exc:  # the source itself is unusable: skip all its clips
            return results + [{"status": "skipped", "source": str(task.source.path), "reason": str(exc)}]
        except Exception as exc:  # noqa: BLE001 - one bad input must never stop the run
            reason = f"{type(exc).__name__}: {exc}"
            if as_disk_full(exc) is not None:  # the disk is full: no other clip will fit either
                return results + [
                    {"status": "failed", "id": spec.clip_id, "reason": reason, "disk_full": True}
                ]
            results.append({"status": "failed", "id": spec.clip_id, "reason": reason})
    return results


def plan(cfg: GenConfig, out: Path, notes: list[str] | None = None) -> tuple[list[Task], list[dict]]:
    """Discover sources, read every SVG, and turn the usable ones into tasks (one per source).
    Warnings (e.g. a folder without captions.json) go to `notes` when given."""
    sources, skipped = [], []
    for folder in cfg.sketches:
        s, k = static_sources(folder, notes)
        sources += [src for src in s if src.path.stem not in cfg.exclude]
        skipped += k
    for item in cfg.animations:
        s, k = animation_sources(item)
        sources += s
        skipped += k
    parsed = {}
    for src in sources:  # read every SVG once here: an unusable file is skipped up front, with why
        try:
            parsed[src.path] = read_source(src, cfg.limits)
        except SvgError as exc:
            skipped.append({"source": str(src.path), "reason": str(exc)})
    sources = [src for src in sources if src.path in parsed]
    # hashed once, and only files read_source accepted (regular, inside their folder, bounded)
    sha = {src.path: file_sha256(src.path) for src in sources if src.kind == "static"}
    if HELDOUT in cfg.exclude:  # by content: a held-out sketch is left out under any name
        held = heldout_hashes()
        gone = {path for path, h in sha.items() if h in held}
        sources = [src for src in sources if src.path not in gone]
        if gone and notes is not None:
            names = ", ".join(sorted(p.stem for p in gone))
            notes.append(f"left out {len(gone)} held-out evaluation sketch(es) (exclude: [heldout]): {names}")
    if not sources:
        raise UserError(f"no usable inputs: {_reasons(skipped)}")
    sources = unique_keys(sources)
    splits = assign_splits([s.key for s in sources], cfg.seed, cfg.val_fraction)
    clips_dir = out / CLIPS
    tasks = []
    for src in sources:
        if src.kind == "static":
            program = (
                program_for_caption(src.caption)
                if cfg.motion == "auto"
                else ALIASES.get(cfg.motion, cfg.motion)
            )
            specs = tuple(
                ClipSpec(f"{src.key}-{v:02d}", program, clip_seed(cfg.seed, src.key, v), splits[src.key])
                for v in range(cfg.clips_per_sketch)
            )
        else:
            specs = (ClipSpec(src.key, "live_sketch", 0, splits[src.key]),)
        tasks.append(
            Task(
                src,
                specs,
                cfg.frames,
                cfg.fps,
                cfg.size,
                cfg.stroke_width,
                cfg.renderer,
                cfg.limits,
                clips_dir,
                parsed[src.path],
                sha.get(src.path),
            )
        )
    return tasks, skipped


def _reasons(skipped: list[dict], limit: int = 5) -> str:
    """'N skipped (a.svg: why; b.svg: why; ...)' on one line."""
    if not skipped:
        return "nothing found"
    shown = "; ".join(f"{Path(s['source']).name}: {s['reason']}" for s in skipped[:limit])
    more = f"; and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return f"{len(skipped)} skipped ({shown}{more})"


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _exit_when_orphaned(parent_pid: int, interval: float = 0.5) -> None:
    """Watchdog thread: a worker whose parent is gone (re-parented) exits at once."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(interval)


def _worker_init(parent_pid: int) -> None:
    """Pool initializer: tie the worker's life to the data_gen process that started it.

    On Linux the kernel sends SIGKILL to the worker when its parent dies (PR_SET_PDEATHSIG), so a
    SIGKILLed data_gen leaves no worker behind; elsewhere (and as a fallback) a watchdog thread
    polls the parent pid. A parent that died before this ran is caught by the first check."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def _run_tasks(tasks: list[Task], workers: int):
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield task, process(task)
        return
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(os.getpid(),),
    ) as pool:
        futures = {pool.submit(process, t): t for t in tasks}
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                yield task, fut.result()
            except BrokenProcessPool as exc:
                yield (
                    task,
                    [
                        {"status": "failed", "id": c.clip_id, "reason": f"worker died: {exc}"}
                        for c in task.clips
                    ],
                )


def generate(cfg: GenConfig) -> dict:
    """Build (or resume) the dataset in cfg.out; returns the report (also written to report.json)."""
    from flipsketch.checks import check_out_dir

    cfg.validate()
    out = check_out_dir(cfg.out, "out")
    if (out / CLIPS).exists() and not (out / CLIPS).is_dir():
        raise UserError(f"out: {out / CLIPS} is an existing file, not a folder")
    notes: list[str] = []
    tasks, skipped = plan(cfg, out, notes)  # every input is read and checked before anything is written
    sharded = cfg.shard_count > 1
    if sharded:  # splits, seeds and clip ids come from the whole plan; this shard builds its share
        tasks = tasks[cfg.shard_index :: cfg.shard_count]
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    for s in skipped:
        print(f"warning: skipped {s['source']}: {s['reason']}", file=sys.stderr)
    created = [p for p in (out, out / CLIPS) if not p.exists()]
    try:
        (out / CLIPS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    # another shard's temp files may be in flight: only an unsharded run (the merge) removes strays
    cleaned = [] if sharded else atomic.clean_temp_files(out) + atomic.clean_temp_files(out / CLIPS)
    n_clips = sum(len(t.clips) for t in tasks)
    records: dict[str, dict] = {}
    failed: list[dict] = []
    counts = {"written": 0, "existing": 0}
    start = time.perf_counter()
    with tqdm(total=n_clips, unit="clip", desc="data_gen", disable=not cfg.progress) as bar:
        for task, results in _run_tasks(tasks, cfg.workers):
            for r in results:
                if r["status"] in counts:
                    counts[r["status"]] += 1
                    records[r["id"]] = r["record"]
                elif r["status"] == "skipped":
                    skipped.append({"source": r["source"], "reason": r["reason"]})
                    print(f"warning: skipped {r['source']}: {r['reason']}", file=sys.stderr)
                else:
                    failed.append({"id": r["id"], "source": str(task.source.path), "reason": r["reason"]})
                    if r.get("disk_full"):  # stop at once: the clips written so far are whole
                        raise DiskFullError(
                            f"disk full writing {out}: {len(records)} of {n_clips} clips are done "
                            "(whole files; a rerun keeps them and makes the rest); free space and rerun"
                        )
                    print(f"warning: clip {r['id']} failed: {r['reason']}", file=sys.stderr)
            bar.update(len(task.clips))
    elapsed = time.perf_counter() - start
    rows = [records[c.clip_id] for t in tasks for c in t.clips if c.clip_id in records]
    if not rows and not (sharded and not failed):  # nothing usable came out: leave no empty dataset behind
        if sharded:  # the folder is shared with the other shards
            raise UserError(f"no clips were made by shard {cfg.shard_index}: {_reasons(failed)}")
        for p in reversed(created):
            shutil.rmtree(p, ignore_errors=True)
        reasons = [{"source": f["id"], "reason": f["reason"]} for f in failed] + skipped
        raise UserError(f"no clips were made: {_reasons(reasons)}")
    tag = f".shard-{cfg.shard_index}-of-{cfg.shard_count}" if sharded else ""
    atomic.write_text(out / f"metadata{tag}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    frames_written = counts["written"] * cfg.frames
    report = {
        "clips": len(rows),
        "written": counts["written"],
        "existing": counts["existing"],
        "train": sum(r["split"] == "train" for r in rows),
        "val": sum(r["split"] == "val" for r in rows),
        "skipped_sources": skipped,
        "failed_clips": failed,
        "temp_files_removed": len(cleaned),
        "elapsed_s": round(elapsed, 3),
        "frames_per_s": round(frames_written / elapsed, 1) if elapsed > 0 else None,
        "workers": cfg.workers,
        "size": cfg.size,
        "frames": cfg.frames,
    }
    if sharded:
        report["shard"] = {"index": cfg.shard_index, "count": cfg.shard_count}
    atomic.write_text(out / f"report{tag}.json", json.dumps(report, indent=1) + "\n")
    return report
