"""Procedural line drawings that move: the tiny world's base domain.

A sketch video is the SAME strokes, transformed from frame to frame. That is what the base model's
temporal layers must learn before FlipSketch's composition can keep an input drawing alive, so the
base domain is made of drawings, not filled shapes:

* a random *doodle* is a handful of cubic Bezier strokes on the unit canvas, the way people draw
  things: a closed body outline, maybe a head, limbs, tails and antennae that leave the body, eyes
  and inner details; or an object (a house, a flag, a star, a flower, waves, a zigzag, a spiral);
* it is moved by `data_gen`'s motion programs (the same ones that animate the sketch LoRA's data:
  global affine paths plus smooth local displacement fields), frame 0 at rest;
* it is rasterised by `data_gen`'s cairo renderer as black anti-aliased strokes on white;
* the caption names a subject and the motion ("a doodle of a cat jumping").

Everything is deterministic from a seed and fast enough to draw every batch on the fly. None of
the shipped sketches is ever used here, held-out or not.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# caption phrases per data_gen motion program (each phrase selects that program in data_gen too)
PHRASES: dict[str, tuple[str, ...]] = {
    "sway": ("swaying", "swaying in the wind", "bending"),
    "wave": ("waving", "waving in the wind", "wiggling", "slithering"),
    "swim": ("swimming", "swimming in the water"),
    "walk": ("walking", "walking forward", "running"),
    "gallop": ("galloping", "trotting"),
    "fly": ("flying", "flapping its wings", "flying across the sky"),
    "spin": ("spinning", "rotating"),
    "jump": ("jumping", "bouncing up and down", "hopping"),
    "grow": ("growing", "sprouting"),
    "bloom": ("blooming", "opening"),
    "float": ("floating", "drifting", "bobbing"),
    "dance": ("dancing", "dancing happily"),
    "drive": ("driving", "rolling", "riding"),
    "rise": ("launching", "lifting off"),
}
PROGRAM_WEIGHTS = {p: (0.4 if p in ("spin", "bloom", "grow") else 1.0) for p in PHRASES}
NOUNS = (
    "creature", "animal", "cat", "dog", "fish", "bird", "bug", "monster", "robot", "person",
    "car", "boat", "flag", "flower", "plant", "tree", "star", "kite", "ball", "house",
    "balloon", "doodle", "thing", "toy", "ghost", "snail", "frog", "whale", "horse", "rocket",
)  # fmt: skip


# ---------------------------------------------------------------------------- stroke helpers
def _catmull_rom(pts: np.ndarray, closed: bool) -> np.ndarray:
    """Through-points (K, 2) -> cubic Bezier control points (1 + 3n, 2) of a smooth curve."""
    k = len(pts)
    if closed:
        ext = np.concatenate([pts[-1:], pts, pts[:2]])
        segs = k
    else:
        ext = np.concatenate([pts[:1], pts, pts[-1:]])
        segs = k - 1
    out = [ext[1]]
    for i in range(1, segs + 1):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out += [p1 + (p2 - p0) / 6, p2 - (p3 - p1) / 6, p2]
    return np.asarray(out)


def _polyline(pts: np.ndarray, closed: bool) -> np.ndarray:
    """Straight segments as Bezier control points (corners stay sharp)."""
    if closed:
        pts = np.concatenate([pts, pts[:1]])
    out = [pts[0]]
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        out += [a + (b - a) / 3, a + 2 * (b - a) / 3, b]
    return np.asarray(out)


def _loop(
    rng: np.random.Generator, c, rx: float, ry: float, n: int | None = None, wobble: float = 0.15
) -> np.ndarray:
    n = n or int(rng.integers(5, 9))
    a = np.sort(rng.uniform(0, 2 * np.pi, n) * 0.35 + np.linspace(0, 2 * np.pi, n, endpoint=False))
    r = 1 + rng.uniform(-wobble, wobble, n)
    rot = rng.uniform(-0.4, 0.4)
    x, y = rx * r * np.cos(a), ry * r * np.sin(a)
    return np.stack(
        [c[0] + x * math.cos(rot) - y * math.sin(rot), c[1] + x * math.sin(rot) + y * math.cos(rot)], 1
    )


def _circle(c, r: float) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    return np.stack([c[0] + r * np.cos(a), c[1] + r * np.sin(a)], 1)


class _Drawing:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.strokes: list[tuple[np.ndarray, bool]] = []

    def curve(self, through, closed: bool = False) -> None:
        self.strokes.append((_catmull_rom(np.asarray(through, float), closed), closed))

    def lines(self, through, closed: bool = False) -> None:
        self.strokes.append((_polyline(np.asarray(through, float), closed), closed))

    def limb(self, start, direction: float, length: float, bend: float = 0.3) -> None:
        d = np.array([math.cos(direction), math.sin(direction)])
        n = np.array([-d[1], d[0]])
        b = self.rng.uniform(-bend, bend) * length
        s = np.asarray(start)
        self.curve([s, s + d * length * 0.5 + n * b, s + d * length])


def _on_loop(loop: np.ndarray, rng: np.random.Generator, side: float | None = None):
    """A point on (near) the outline and its outward direction."""
    c = loop.mean(0)
    if side is None:
        i = int(rng.integers(len(loop)))
    else:  # the loop point whose angle is nearest `side`
        ang = np.arctan2(loop[:, 1] - c[1], loop[:, 0] - c[0])
        i = int(np.argmin(np.abs(np.angle(np.exp(1j * (ang - side))))))
    p = loop[i]
    return p, math.atan2(p[1] - c[1], p[0] - c[0])


# ---------------------------------------------------------------------------- subjects
def _creature(d: _Drawing) -> None:
    rng = d.rng
    rx, ry = rng.uniform(0.14, 0.26), rng.uniform(0.09, 0.2)
    body = _loop(rng, (0.5, 0.5), rx, ry)
    d.curve(body, closed=True)
    if rng.random() < 0.75:  # head
        hp, ha = _on_loop(body, rng, side=rng.choice([0.0, math.pi]) + rng.uniform(-0.8, 0.3))
        hr = rng.uniform(0.06, 0.1)
        hc = hp + hr * 0.8 * np.array([math.cos(ha), math.sin(ha)])
        head = _loop(rng, hc, hr, hr * rng.uniform(0.8, 1.1), n=6, wobble=0.08)
        d.curve(head, closed=True)
        d.curve(_circle(hc + rng.uniform(-0.3, 0.3, 2) * hr, hr * 0.18), closed=True)  # eye
        if rng.random() < 0.5:  # ears / antennae
            for s in (-0.5, 0.5):
                d.limb(
                    hc + hr * np.array([math.cos(-math.pi / 2 + s), math.sin(-math.pi / 2 + s)]),
                    -math.pi / 2 + s,
                    hr * rng.uniform(0.8, 1.6),
                )
    for _ in range(int(rng.integers(0, 5))):  # legs hang down
        p, _a = _on_loop(body, rng, side=math.pi / 2 + rng.uniform(-0.9, 0.9))
        d.limb(p, math.pi / 2 + rng.uniform(-0.4, 0.4), rng.uniform(0.08, 0.18), bend=0.2)
    if rng.random() < 0.6:  # tail
        p, a = _on_loop(body, rng, side=rng.choice([0.0, math.pi]))
        d.limb(p, a + rng.uniform(-0.6, 0.6), rng.uniform(0.08, 0.2), bend=0.5)
    if rng.random() < 0.4:  # a line of pattern inside the body
        xs = np.linspace(-0.6, 0.6, 4) * rx
        d.curve(np.stack([0.5 + xs, 0.5 + rng.uniform(-0.3, 0.3, 4) * ry], 1))


def _house(d: _Drawing) -> None:
    rng = d.rng
    w, h = rng.uniform(0.28, 0.45), rng.uniform(0.22, 0.32)
    x0, y0 = 0.5 - w / 2, 0.58 - h / 2
    d.lines([(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)], closed=True)
    d.lines([(x0 - 0.03, y0), (0.5, y0 - rng.uniform(0.12, 0.2)), (x0 + w + 0.03, y0)])
    dw = w * 0.22
    d.lines(
        [
            (0.5 - dw / 2, y0 + h),
            (0.5 - dw / 2, y0 + h * 0.5),
            (0.5 + dw / 2, y0 + h * 0.5),
            (0.5 + dw / 2, y0 + h),
        ]
    )
    if rng.random() < 0.7:
        s = w * 0.15
        wx = x0 + w * 0.12
        d.lines(
            [(wx, y0 + h * 0.2), (wx + s, y0 + h * 0.2), (wx + s, y0 + h * 0.2 + s), (wx, y0 + h * 0.2 + s)],
            closed=True,
        )


def _flag(d: _Drawing) -> None:
    rng = d.rng
    px, top = rng.uniform(0.3, 0.4), rng.uniform(0.2, 0.3)
    d.lines([(px, top), (px, 0.85)])
    w, h = rng.uniform(0.3, 0.42), rng.uniform(0.16, 0.24)
    xs = np.linspace(px, px + w, 5)
    wave = rng.uniform(0.01, 0.03) * np.sin(np.linspace(0, 2 * np.pi, 5))
    top_edge = np.stack([xs, top + wave], 1)
    bot_edge = np.stack([xs[::-1], top + h + wave[::-1]], 1)
    d.curve(np.concatenate([top_edge, bot_edge]), closed=False)


def _star(d: _Drawing) -> None:
    rng = d.rng
    n = int(rng.integers(5, 8))
    r0, r1 = rng.uniform(0.22, 0.32), rng.uniform(0.35, 0.55)
    a = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False) - math.pi / 2 + rng.uniform(-0.3, 0.3)
    r = np.where(np.arange(2 * n) % 2 == 0, r0, r0 * r1)
    d.lines(np.stack([0.5 + r * np.cos(a), 0.5 + r * np.sin(a)], 1), closed=True)
    if rng.random() < 0.4:
        d.curve(_circle((0.5, 0.5), r0 * r1 * 0.5), closed=True)


def _flower(d: _Drawing) -> None:
    rng = d.rng
    c = np.array([0.5, rng.uniform(0.3, 0.4)])
    rc = rng.uniform(0.04, 0.07)
    d.curve(_circle(c, rc), closed=True)
    n = int(rng.integers(4, 8))
    pl = rng.uniform(0.08, 0.13)
    for k in range(n):
        a = 2 * math.pi * k / n
        u = np.array([math.cos(a), math.sin(a)])
        v = np.array([-u[1], u[0]])
        base = c + u * rc
        d.curve(
            [
                base - v * pl * 0.25,
                base + u * pl * 0.6 - v * pl * 0.35,
                base + u * pl,
                base + u * pl * 0.6 + v * pl * 0.35,
                base + v * pl * 0.25,
            ]
        )
    d.curve([c + (0, rc + pl), c + (rng.uniform(-0.05, 0.05), 0.35), (0.5, 0.88)])
    if rng.random() < 0.7:
        y = rng.uniform(0.62, 0.75)
        d.curve(
            [
                (0.5, y),
                (0.5 + rng.choice([-1, 1]) * 0.08, y - 0.06),
                (0.5 + rng.choice([-1, 1]) * 0.12, y - 0.02),
            ]
        )


def _waves(d: _Drawing) -> None:
    rng = d.rng
    for k in range(int(rng.integers(1, 4))):
        y = 0.35 + 0.15 * k + rng.uniform(-0.03, 0.03)
        xs = np.linspace(0.15, 0.85, 7)
        d.curve(
            np.stack(
                [xs, y + rng.uniform(0.02, 0.05) * np.sin(np.linspace(0, rng.uniform(2, 5) * np.pi, 7))], 1
            )
        )


def _spiral(d: _Drawing) -> None:
    rng = d.rng
    turns = rng.uniform(1.5, 3.0)
    a = np.linspace(0, 2 * np.pi * turns, int(8 * turns))
    r = np.linspace(0.02, rng.uniform(0.25, 0.35), len(a))
    d.curve(np.stack([0.5 + r * np.cos(a), 0.5 + r * np.sin(a)], 1))


def _vehicle(d: _Drawing) -> None:
    rng = d.rng
    w, h = rng.uniform(0.4, 0.55), rng.uniform(0.12, 0.18)
    x0, y0 = 0.5 - w / 2, 0.55
    d.lines(
        [
            (x0, y0),
            (x0 + w, y0),
            (x0 + w, y0 - h),
            (x0 + w * 0.7, y0 - h),
            (x0 + w * 0.6, y0 - 2 * h),
            (x0 + w * 0.25, y0 - 2 * h),
            (x0 + w * 0.15, y0 - h),
            (x0, y0 - h),
        ],
        closed=True,
    )
    wr = rng.uniform(0.05, 0.07)
    for x in (x0 + w * 0.22, x0 + w * 0.78):
        d.curve(_circle((x, y0 + wr * 0.3), wr), closed=True)


def _scribbles(d: _Drawing) -> None:
    rng = d.rng
    for _ in range(int(rng.integers(2, 6))):
        k = int(rng.integers(3, 6))
        c = rng.uniform(0.3, 0.7, 2)
        d.curve(c + rng.uniform(-0.2, 0.2, (k, 2)), closed=bool(rng.random() < 0.3))


def _shapes(d: _Drawing) -> None:
    rng = d.rng
    for _ in range(int(rng.integers(1, 4))):
        c = rng.uniform(0.3, 0.7, 2)
        r = rng.uniform(0.08, 0.2)
        if rng.random() < 0.5:
            d.curve(_loop(rng, c, r, r * rng.uniform(0.6, 1.0), wobble=0.1), closed=True)
        else:
            n = int(rng.integers(3, 7))
            a = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 6.3)
            d.lines(np.stack([c[0] + r * np.cos(a), c[1] + r * np.sin(a)], 1), closed=True)


SUBJECTS = {
    "creature": (_creature, 4.0),
    "house": (_house, 0.6),
    "flag": (_flag, 0.6),
    "star": (_star, 0.8),
    "flower": (_flower, 0.8),
    "waves": (_waves, 0.5),
    "spiral": (_spiral, 0.4),
    "vehicle": (_vehicle, 0.6),
    "scribbles": (_scribbles, 1.0),
    "shapes": (_shapes, 1.0),
}


def random_doodle(seed: int):
    """A random line drawing as a data_gen `Sketch` (unit canvas), and the name of its kind."""
    from data_gen.svg_io import Sketch

    rng = np.random.default_rng(seed)
    names = list(SUBJECTS)
    w = np.array([SUBJECTS[n][1] for n in names])
    kind = names[int(rng.choice(len(names), p=w / w.sum()))]
    d = _Drawing(rng)
    SUBJECTS[kind][0](d)
    pts = np.concatenate([s for s, _ in d.strokes])
    # place: a random scale and offset, the whole drawing on the canvas with room to move
    lo, hi = pts.min(0), pts.max(0)
    span = max(float((hi - lo).max()), 1e-3)
    target = rng.uniform(0.45, 0.8)
    scale = target / span
    centre = (lo + hi) / 2
    shift = np.array([0.5, 0.5]) + rng.uniform(-1, 1, 2) * (1 - target) * 0.25
    spans, points, start = [], [], 0
    for s, _ in d.strokes:
        points.append((s - centre) * scale + shift)
        spans.append((start, start + len(s)))
        start += len(s)
    width = rng.uniform(0.7, 1.9) / 64  # canvas units: 0.7..1.9 px at 64 px
    widths = np.full(len(spans), width) * rng.uniform(0.85, 1.15, len(spans))
    sk = Sketch(np.concatenate(points), np.asarray(spans), np.asarray([c for _, c in d.strokes]), widths)
    return sk, kind


# The motion of a clip can be a window of `frames` consecutive frames out of a program animated over
# `span` frames, drawn per clip from the program's spans (`--spans spin=24,32 fly=16,24`; programs not
# listed: the whole program in the clip, as the shipped model was trained). data_gen's loops make
# whole cycles per animation (one below 16 frames, one or two from 16), so the span sets the speed.
# In 8 frames a spin is a full turn, 45 degrees a frame (mean stroke motion 2.6 px a frame at 64 px,
# five times any other program) and a flight 2 wing beats (0.8 px); over 24..32 frames a spin moves
# 1.0-1.3 px a frame, over 16..24 a flight 0.35-0.55. Measured (docs/tiny_world.md): 1,487 more base
# steps with spin=24,32 fly=16,24 did not keep the spinning star or the flying bird (identity 22%
# and 39%), so the default stays the shipped recipe.
MOTION_SPANS: dict[str, tuple[int, ...]] = {}


def render_doodle_clip(
    seed: int,
    size: int = 64,
    frames: int = 8,
    program: str | None = None,
    spans: dict[str, tuple[int, ...]] | None = None,
):
    """(frames, size, size) float in [0, 1] (1 = white paper) and a caption.

    spans: {program: frame counts} (None: MOTION_SPANS; {}: every program whole in the clip). A listed
    program is animated over a span drawn from its counts (at least `frames`) and a random window of
    `frames` consecutive frames is kept."""
    from data_gen.motion import ONE_SHOT, animate
    from data_gen.raster import CairoRenderer, render_clip

    rng = np.random.default_rng(seed + 1_000_003)
    sk, kind = random_doodle(seed)
    if program is None:
        names = list(PHRASES)
        w = np.array([PROGRAM_WEIGHTS[p] for p in names])
        program = names[int(rng.choice(len(names), p=w / w.sum()))]
    motion_seed = int(rng.integers(2**31 - 1))
    choices = (MOTION_SPANS if spans is None else spans).get(program, ())
    # the window has its own random stream: drawing and caption do not depend on spans
    wrng = np.random.default_rng(seed + 2_000_003)
    span = max(frames, int(choices[int(wrng.integers(len(choices)))])) if choices else frames
    pts = animate(sk, program, span, motion_seed)
    if span > frames:
        if program in ONE_SHOT:  # a one-shot program (grow, ...) runs once: any window of it
            start = int(wrng.integers(span - frames + 1))
            pts = pts[start : start + frames]
        else:  # a loop: a window anywhere in the cycle, wrapping around
            start = int(wrng.integers(span))
            pts = pts[(start + np.arange(frames)) % span]
    clip = render_clip(sk, pts, CairoRenderer(size)).astype(np.float32) / 255.0
    noun = NOUNS[int(rng.integers(len(NOUNS)))] if kind in ("creature", "scribbles", "shapes") else kind
    noun = {"waves": "wave", "scribbles": "scribble", "shapes": "shape"}.get(noun, noun)
    phrase = PHRASES[program][int(rng.integers(len(PHRASES[program])))]
    lead = ("a drawing of a", "a sketch of a", "a", "a doodle of a")[int(rng.integers(4))]
    return torch.from_numpy(clip), f"{lead} {noun} {phrase}"


def render_doodle_batch(
    seeds, size: int = 64, frames: int = 8, spans: dict[str, tuple[int, ...]] | None = None
) -> tuple[torch.Tensor, list[str]]:
    """(B, F, 3, H, W) in [-1, 1] (grey repeated to RGB, the VAE's input) and captions."""
    clips, caps = zip(*(render_doodle_clip(int(s), size, frames, spans=spans) for s in seeds), strict=True)
    x = torch.stack(clips)[:, :, None].expand(-1, -1, 3, -1, -1)
    return x * 2 - 1, list(caps)
