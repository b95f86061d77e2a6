"""The tiny-world scorers' data: moving drawings at 64 px, rendered once into memory (uint8).

Training: procedural doodles (`doodles`, any seed) and data_gen animations of the shipped sketches
that are NOT held out. Evaluation: the held-out shipped sketches and third-party drawings (SVGs
animated by data_gen, PNGs moved by affine paths), which no training step sees.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..ink import otsu_threshold

SIZE = 64
FRAMES = 10


def binarise(clip: np.ndarray) -> np.ndarray:
    """(F, H, W) uint8 -> Otsu per frame, black strokes on white (FlipSketch's post-processing)."""
    return np.stack([np.where(f >= otsu_threshold(f), 255, 0).astype(np.uint8) for f in clip])


def doodle_pool(seeds) -> tuple[np.ndarray, list[str], list[str]]:
    """(N, F, H, W) uint8 clips, captions and motion programs of procedural doodles."""
    from .doodles import PHRASES, render_doodle_clip

    clips, caps, progs = [], [], []
    rev = {ph: p for p, phs in PHRASES.items() for ph in phs}
    for s in seeds:
        clip, cap = render_doodle_clip(int(s), SIZE, FRAMES)
        clips.append((clip.numpy() * 255).round().astype(np.uint8))
        caps.append(cap)
        progs.append(next(rev[ph] for ph in sorted(rev, key=len, reverse=True) if cap.endswith(" " + ph)))
    return np.stack(clips), caps, progs


def svg_clips(paths, per_sketch: int, seed: int, root: Path | None = None):
    """Clips of SVG sketches moved by data_gen's programs: (N, F, H, W) uint8, captions, sketch index."""
    from data_gen.motion import PROGRAMS, animate
    from data_gen.raster import CairoRenderer, render_clip
    from data_gen.svg_io import read_svg_file

    from .doodles import PHRASES

    rng = np.random.default_rng(seed)
    clips, caps, owner = [], [], []
    for i, path in enumerate(paths):
        sk = read_svg_file(Path(path), root=root)
        noun = Path(path).stem.split("_")[0].rstrip("0123456789")
        for k in range(per_sketch):
            prog = PROGRAMS[(k + i) % len(PROGRAMS)]
            pts = animate(sk, prog, FRAMES, int(rng.integers(2**31 - 1)))
            clips.append(render_clip(sk, pts, CairoRenderer(SIZE)))
            caps.append(f"a drawing of a {noun} {PHRASES[prog][0]}")
            owner.append(i)
    return np.stack(clips), caps, np.asarray(owner)


def training_sketches() -> list[Path]:
    """The shipped sketches minus the held-out eight."""
    from data_gen.build import HELDOUT_SKETCHES, SHIPPED_SKETCHES

    return sorted(p for p in SHIPPED_SKETCHES.glob("*.svg") if p.stem not in HELDOUT_SKETCHES)


def heldout_sketches() -> list[Path]:
    from data_gen.build import HELDOUT_SKETCHES, SHIPPED_SKETCHES

    return [SHIPPED_SKETCHES / f"{s}.svg" for s in HELDOUT_SKETCHES]


def _png_grey(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im.draft("L", (SIZE * 4, SIZE * 4))
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        g = Image.alpha_composite(bg, im).convert("L")
        side = max(g.size)
        sq = Image.new("L", (side, side), 255)
        sq.paste(g, ((side - g.width) // 2, (side - g.height) // 2))
        return np.asarray(sq.resize((SIZE, SIZE), Image.Resampling.LANCZOS))


def affine_clip(img: np.ndarray, seed: int) -> np.ndarray:
    """A still grey image moved by a smooth random affine path (shift, turn, scale): (F, H, W) uint8."""
    rng = np.random.default_rng(seed)
    kind = ("shift", "turn", "scale", "bounce")[seed % 4]
    x = torch.from_numpy(img.copy()).float()[None, None] / 255.0
    out = []
    for t in np.linspace(0, 1, FRAMES):
        s = math.sin(2 * math.pi * t)
        a = {"turn": 0.35 * s * rng.uniform(0.7, 1)}.get(kind, 0.0)
        sc = 1 + (0.15 * s if kind == "scale" else 0.0)
        dx = 0.15 * s if kind == "shift" else 0.0
        dy = -0.15 * abs(s) if kind == "bounce" else 0.0
        theta = torch.tensor(
            [[math.cos(a) / sc, -math.sin(a) / sc, dx], [math.sin(a) / sc, math.cos(a) / sc, dy]],
            dtype=torch.float32,
        )
        grid = F.affine_grid(theta[None], [1, 1, SIZE, SIZE], align_corners=False)
        y = F.grid_sample(x - 1, grid, align_corners=False, padding_mode="zeros") + 1
        out.append((y[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    return np.stack(out)


def unseen_sets(shared: Path | None, per_sketch: int = 6, seed: int = 7) -> dict:
    """Held-out evaluation sets: {name: (clips, sketch index per clip)}; third-party ones when `shared` is given."""
    sets = {"heldout_shipped": svg_clips(heldout_sketches(), per_sketch, seed)}
    if shared is not None:
        svg_dir = Path(shared) / "live_sketch_svg"
        svgs = sorted(svg_dir.glob("*.svg"))
        if svgs:
            sets["live_sketch_svg"] = svg_clips(svgs, per_sketch, seed, root=svg_dir)
        pngs = sorted((Path(shared) / "flipsketch_examples").glob("*.png"))
        if pngs:
            clips = [
                affine_clip(_png_grey(p), seed + 31 * i + k) for i, p in enumerate(pngs) for k in range(4)
            ]
            owner = np.repeat(np.arange(len(pngs)), 4)
            sets["flipsketch_examples"] = (np.stack(clips), [""] * len(clips), owner)
    return {k: (v[0], v[2]) for k, v in sets.items()}
