"""Benchmark data_gen: generation frames/s for 1 and 2 workers, and clip storage formats.

    python experiments/bench_data_gen.py                 # generation speed, 256x256, cairo renderer
    python experiments/bench_data_gen.py --renderer cairosvg
    python experiments/bench_data_gen.py --formats       # + read speed / size of PNG vs .npy vs MP4

Wall time covers the whole `generate` call (discovery, motion, rendering, atomic .npy writes,
metadata). Format read times are with the files in the page cache (just written).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from data_gen.build import SHIPPED_SKETCHES, GenConfig, generate
from data_gen.dataset import load_clip, read_metadata


def bench_generation(args, tmp: Path) -> Path:
    print(
        f"cpus={os.cpu_count()} load average={os.getloadavg()[0]:.2f} (other jobs skew the 2-worker number)"
    )
    rates = {}
    for workers in (1, 2):
        best = None
        for rep in range(args.repeats):  # best of N: the disk's write-back of earlier runs adds noise
            out = tmp / f"w{workers}_{rep}"
            cfg = GenConfig(
                out=out,
                sketches=(SHIPPED_SKETCHES,),
                clips_per_sketch=args.clips_per_sketch,
                size=args.size,
                frames=args.frames,
                renderer=args.renderer,
                workers=workers,
                progress=False,
            )
            os.sync()
            start = time.perf_counter()
            report = generate(cfg)
            wall = time.perf_counter() - start
            if best is None or wall < best[0]:
                best = (wall, report["written"])
            if rep < args.repeats - 1 or workers == 2:
                shutil.rmtree(out)
        wall, written = best
        frames = written * args.frames
        rates[workers] = frames / wall
        print(
            f"workers={workers}: {written} clips, {frames} frames in {wall:.2f} s "
            f"-> {rates[workers]:.0f} frames/s ({args.size}x{args.size}, renderer={args.renderer}, "
            f"best of {args.repeats})"
        )
    print(f"speed-up 2 vs 1 workers: {rates[2] / rates[1]:.2f}x")
    return tmp / f"w1_{args.repeats - 1}"


def _png_write(clip, folder: Path):
    from PIL import Image

    folder.mkdir()
    for i, frame in enumerate(clip):
        Image.fromarray(frame).save(folder / f"frame{i:03d}.png")


def _png_read(folder: Path):
    from PIL import Image

    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


def _mp4_write(clip, path: Path, fps: int):
    import imageio_ffmpeg

    t, h, w = clip.shape
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        pix_fmt_in="gray",
        fps=fps,
        quality=8,
        macro_block_size=16,
        ffmpeg_log_level="error",
    )
    writer.send(None)
    for frame in clip:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def _mp4_read(path: Path):
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="gray", bpp=1)
    meta = next(gen)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w) for f in gen])


def bench_formats(root: Path, tmp: Path, fps: int) -> None:
    rows = read_metadata(root)
    clips = [load_clip(root, r) for r in rows]
    formats = {
        "npy": (lambda c, p: np.save(p.with_suffix(".npy"), c), lambda p: np.load(p.with_suffix(".npy"))),
        "png": (_png_write, _png_read),
        "mp4": (
            lambda c, p: _mp4_write(c, p.with_suffix(".mp4"), fps),
            lambda p: _mp4_read(p.with_suffix(".mp4")),
        ),
    }
    print(
        f"\nformat  write ms/clip  read ms/clip  read clips/s  KiB/clip  max |error|   ({len(clips)} clips "
        f"of {clips[0].shape}, warm page cache)"
    )
    for name, (write, read) in formats.items():
        folder = tmp / f"fmt_{name}"
        folder.mkdir()
        paths = [folder / f"c{i:05d}" for i in range(len(clips))]
        start = time.perf_counter()
        for c, p in zip(clips, paths, strict=True):
            write(c, p)
        t_write = (time.perf_counter() - start) / len(clips)
        start = time.perf_counter()
        back = [read(p) for p in paths]
        t_read = (time.perf_counter() - start) / len(clips)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / len(clips) / 1024
        err = max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(clips, back, strict=True))
        print(
            f"{name:6s}  {t_write * 1e3:13.2f}  {t_read * 1e3:12.2f}  {1 / t_read:12.0f}  {size:8.0f}  {err:11d}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips-per-sketch", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--renderer", default="cairo", choices=["cairo", "cairosvg"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--formats", action="store_true", help="also compare clip storage formats")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_gen_"))
    try:
        root = bench_generation(args, tmp)
        if args.formats:
            bench_formats(root, tmp, fps=8)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
