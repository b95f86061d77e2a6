"""Procedural motion synthesiser in the spirit of Live-Sketch's motion model.

Each frame moves every Bezier control point p of the sketch by
    p' = c + M_t (p + d_t(p) - c) + s_t
where c is the sketch centre, M_t = rotation @ shear @ scale and s_t a translation (the *global*
affine path), and d_t a smooth per-point displacement field (the *local* path). A motion
*program* (sway, walk, fly, ...) sets both from a few seeded random parameters. Loops use whole
numbers of cycles over the clip so they repeat seamlessly; everything is built from sinusoids or
smooth easing, so it is smooth in time. Looping programs start at the rest pose (frame 0 is
the input sketch, as FlipSketch expects); grow and bloom end there instead. Finally one constant zoom/shift for the whole clip keeps
every stroke on the canvas.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from data_gen.svg_io import Sketch

# Verb stems decide first (earliest in the caption wins); nouns only when no verb matched.
# A stem matches a word starting with it; a noun also matches a word ending with it ("goldfish").
# A trailing "$" means the whole word (or its plural) only.
VERBS: dict[str, tuple[str, ...]] = {
    "spin": ("spin", "rotat", "twirl", "whirl", "pirouett", "revolv"),
    "fly": ("fly", "flie", "flew", "flap", "hover", "soar"),
    "wave": ("wav", "ripple", "slither", "undulat", "wriggl", "wiggl", "flick"),
    "swim": ("swim", "paddl", "dive", "diving"),
    "gallop": ("gallop", "trot", "canter"),
    "walk": (
        "walk",
        "run$",
        "runs$",
        "running",
        "stroll",
        "march",
        "stride",
        "shuffl",
        "strut",
        "jog",
        "wander",
    ),
    "jump": ("jump", "hop$", "hops$", "hopping", "bounc", "leap", "skip"),
    "grow": ("grow", "sprout"),
    "bloom": ("bloom", "blossom", "unfold", "open"),
    "sway": ("sway", "rustl", "bend", "swing"),
    "float": ("float", "drift", "bob$", "bobs$", "bobbing", "sail", "glid"),
    "dance": ("danc", "groov", "boogie"),
    "drive": ("driv", "ride", "rides$", "riding", "roll", "pedal", "race", "racing", "zoom", "cruis"),
    "rise": ("launch", "lift", "blast", "ascend", "accelerat", "take off"),
}
NOUNS: dict[str, tuple[str, ...]] = {
    "float": ("balloon", "boat", "ship$", "cloud", "kite", "jellyfish", "ghost", "bubble"),
    "fly": (
        "bird",
        "butterfl",
        "bee$",
        "bees$",
        "dragonfl",
        "moth$",
        "wing",
        "eagle",
        "owl$",
        "parrot",
        "plane",
    ),
    "wave": ("flag", "banner", "snake", "worm", "eel$", "ribbon", "cloth", "lizard", "scarf", "flame"),
    "swim": ("fish", "dolphin", "whale", "shark", "octopus", "turtle", "seal$"),
    "gallop": ("horse", "gazelle", "deer", "zebra", "pony", "unicorn", "giraffe"),
    "jump": ("frog", "kangaroo", "rabbit", "bunny", "cat$", "cats$", "squirrel", "grasshopper"),
    "walk": (
        "person",
        "man$",
        "men$",
        "woman",
        "boy$",
        "girl",
        "dog$",
        "dogs$",
        "penguin",
        "elephant",
        "bear$",
        "robot",
    ),
    "dance": ("dancer", "ballerina"),
    "drive": (
        "car$",
        "cars$",
        "bus$",
        "truck",
        "train",
        "bicycl",
        "bike",
        "motorcycl",
        "tractor",
        "skateboard",
    ),
    "rise": ("rocket", "spaceship", "ufo$"),
    "spin": ("sun$", "star$", "stars$", "wheel", "windmill", "fan$", "propeller", "pinwheel", "coin"),
    "sway": (
        "tree",
        "flower",
        "plant",
        "grass",
        "palm$",
        "reed",
        "tulip",
        "rose$",
        "umbrella",
        "leaf",
        "leaves",
    ),
    "grow": ("seedling", "sapling", "mushroom", "vine"),
}
PROGRAMS: tuple[str, ...] = tuple(VERBS)
ALIASES = {"flap": "fly", "flutter": "wave", "slither": "wave", "run": "walk", "bob": "float", "hop": "jump"}
DEFAULT_PROGRAM = "float"
ONE_SHOT = ("grow", "bloom")  # these end at the rest pose instead of starting there


def _matches(word: str, stem: str, noun: bool) -> bool:
    if stem.endswith("$"):
        return word == stem[:-1]
    return word.startswith(stem) or (noun and len(stem) >= 4 and word.endswith(stem))


def program_for_caption(caption: str) -> str:
    """Pick the motion program that fits a caption (verbs first, then subject nouns)."""
    words = re.findall(r"[a-z]+", caption.lower())
    for table, noun in ((VERBS, False), (NOUNS, True)):
        for word in words:
            for program, stems in table.items():
                if any(_matches(word, s, noun) for s in stems):
                    return program
    return DEFAULT_PROGRAM


@dataclass
class _Ctx:
    pts: np.ndarray  # (N, 2) rest pose
    lo: np.ndarray
    hi: np.ndarray
    theta: np.ndarray  # (T,) loop phase, whole cycles over the clip
    u: np.ndarray  # (T,) 0 -> 1 inclusive, for non-looping programs
    rng: np.random.Generator
    jit: float  # amplitude jitter

    @property
    def size(self) -> np.ndarray:
        return np.maximum(self.hi - self.lo, 1e-3)

    @property
    def ext(self) -> float:
        return float(self.size.max())

    @property
    def centre(self) -> np.ndarray:
        return (self.lo + self.hi) / 2


def _zeros(ctx: _Ctx) -> dict[str, np.ndarray]:
    t = len(ctx.theta)
    return {k: np.zeros(t) for k in ("tx", "ty", "rot", "shear")} | {"sx": np.ones(t), "sy": np.ones(t)}


def _wiggle(ctx: _Ctx, amp: float) -> np.ndarray:
    """Smooth random displacement field: a few low-frequency space-time waves, looping in time."""
    t = len(ctx.theta)
    rel = (ctx.pts - ctx.centre) / ctx.ext
    d = np.zeros((t, len(ctx.pts), 2))
    time = np.arange(t) / t
    for axis in range(2):
        for _ in range(3):
            k = ctx.rng.normal(0.0, 2.0, size=2)
            phi, psi = ctx.rng.uniform(0, 2 * np.pi, size=2)
            m = ctx.rng.integers(1, 3)
            space = np.sin(2 * np.pi * rel @ k + phi)
            d[:, :, axis] += amp / 3 * np.sin(2 * np.pi * m * time + psi)[:, None] * space[None, :]
    return d


def _program(name: str, ctx: _Ctx) -> tuple[dict[str, np.ndarray], np.ndarray]:
    g = _zeros(ctx)
    th, j, ext, rng = ctx.theta, ctx.jit, ctx.ext, ctx.rng
    x, y = ctx.pts[:, 0], ctx.pts[:, 1]
    (x0, y0), y1 = ctx.lo, ctx.hi[1]
    (w, h), cx = ctx.size, ctx.centre[0]
    d = _wiggle(ctx, 0.006 * j)
    sgn = rng.choice([-1.0, 1.0])
    phase = rng.uniform(0, 2 * np.pi)
    deg = math.radians

    if name == "sway":  # bend about the base, more at the top
        hgt = np.clip((y1 - y) / h, 0, 1) ** 2
        d[:, :, 0] += 0.10 * j * h * np.sin(th)[:, None] * hgt
        g["rot"] = deg(1.5) * j * np.sin(th + 0.5)
    elif name == "wave":  # travelling wave along the long axis, growing from an anchored end
        along, across = (0, 1) if 2 * w >= h else (1, 0)  # horizontal unless clearly tall
        lo_a, span = ctx.lo[along], ctx.size[along]
        s = np.clip((ctx.pts[:, along] - lo_a) / span, 0, 1)
        s = s if sgn > 0 else 1 - s
        k = rng.uniform(0.7, 1.5)
        d[:, :, across] += 0.07 * j * ext * s * np.sin(2 * np.pi * k * s[None, :] - th[:, None])
    elif name == "swim":
        s = np.clip((x - x0) / w, 0, 1)
        s = s if sgn > 0 else 1 - s  # amplitude grows towards the tail
        d[:, :, 1] += 0.04 * j * ext * s**1.5 * np.sin(2 * np.pi * 0.8 * s[None, :] - th[:, None])
        g["tx"] = 0.06 * j * ext * np.sin(th)
        g["ty"] = 0.02 * j * ext * np.sin(2 * th + phase)
        g["rot"] = deg(4) * j * np.cos(th)
    elif name in ("walk", "gallop"):
        big = name == "gallop"
        g["ty"] = -(0.06 if big else 0.03) * j * ext * (1 - np.cos(2 * th)) / 2
        g["rot"] = deg(6 if big else 2) * j * np.sin(th + phase * big)
        g["tx"] = (0.03 if big else 0.015) * j * ext * np.sin(th)
        hip = y0 + 0.6 * h
        legs = np.clip((y - hip) / max(y1 - hip, 1e-3), 0, 1)
        side = np.where(x > cx, np.pi, 0.0)
        d[:, :, 0] += (0.07 if big else 0.05) * j * ext * legs * np.sin(th[:, None] + side[None, :])
    elif name == "fly":
        g["ty"] = 0.04 * j * ext * np.sin(th)
        g["tx"] = 0.025 * j * ext * np.sin(th + phase)
        g["rot"] = deg(3) * j * np.sin(th + phase / 2)
        span = np.clip(np.abs(x - cx) / (w / 2), 0, 1) ** 1.5
        flap = np.sin(2 * th)  # 2 or 4 wing beats per clip: at least 6 frames each
        d[:, :, 1] -= 0.09 * j * ext * span * flap[:, None]
        d[:, :, 0] -= 0.02 * j * ext * span * np.sign(x - cx) * ((1 - np.cos(4 * th)) / 2)[:, None]
    elif name == "spin":
        g["rot"] = sgn * 2 * np.pi * np.arange(len(th)) / len(th)  # one full turn per clip
        pulse = 1 + 0.03 * j * np.sin(2 * th)
        g["sx"], g["sy"] = pulse, pulse
    elif name == "jump":
        g["ty"] = -0.22 * j * ext * (1 - np.cos(th)) / 2
        squash = 0.07 * j * np.cos(th)
        g["sx"], g["sy"] = 1 + squash, 1 - squash
        g["ty"] += squash * h / 2  # keep the feet on the ground while squashed
    elif name == "grow":
        s0 = rng.uniform(0.55, 0.75)
        s = s0 + (1 - s0) * (1 - np.cos(np.pi * ctx.u)) / 2
        g["sx"], g["sy"] = s, s
        g["ty"] = (1 - s) * h / 2  # grow up from the base
        hgt = np.clip((y1 - y) / h, 0, 1) ** 2
        d[:, :, 0] += 0.04 * j * h * np.sin(th)[:, None] * hgt
    elif name == "bloom":
        rel = ctx.pts - ctx.centre
        r = np.linalg.norm(rel, axis=1) / (ext / 2)
        ease = (1 - np.cos(np.pi * ctx.u)) / 2
        open_ = -0.35 * j * (1 - ease)  # starts closed (outer points pulled in), ends at rest
        d += open_[:, None, None] * (r[:, None] * rel)[None]
        g["rot"] = sgn * deg(10) * (1 - ease)
    elif name == "float":
        g["ty"] = 0.04 * j * ext * np.sin(th)
        g["tx"] = 0.02 * j * ext * np.sin(th + phase)
        g["rot"] = deg(5) * j * np.sin(th + np.pi / 3)
    elif name == "dance":
        g["rot"] = deg(8) * j * np.sin(th)
        g["shear"] = 0.12 * j * np.sin(th + 0.6)
        g["ty"] = -0.03 * j * ext * (1 - np.cos(2 * th)) / 2
        pulse = 0.03 * j * np.sin(2 * th)
        g["sx"], g["sy"] = 1 + pulse, 1 - pulse
        d *= 2.0
    elif name == "drive":
        g["tx"] = 0.05 * j * ext * np.sin(th)
        g["ty"] = -0.012 * j * ext * (1 - np.cos(4 * th)) / 2
        g["rot"] = deg(1.5) * j * np.sin(2 * th + phase)
    elif name == "rise":
        g["ty"] = -0.08 * j * ext * np.sin(th)
        g["tx"] = 0.008 * j * ext * np.sin(5 * th)
        g["rot"] = deg(2) * j * np.sin(th + phase)
        stretch = 0.04 * j * np.cos(th)
        g["sy"] = 1 + stretch
    else:
        raise ValueError(f"unknown motion program {name!r}; choose from {', '.join(PROGRAMS)}")
    return g, d


def _apply(pts: np.ndarray, centre: np.ndarray, g: dict[str, np.ndarray], d: np.ndarray) -> np.ndarray:
    cos, sin = np.cos(g["rot"]), np.sin(g["rot"])
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (T, 2, 2)
    t = len(cos)
    shear = np.tile(np.eye(2), (t, 1, 1))
    shear[:, 0, 1] = g["shear"]
    scale = np.zeros((t, 2, 2))
    scale[:, 0, 0], scale[:, 1, 1] = g["sx"], g["sy"]
    m = rot @ shear @ scale
    local = pts[None] + d - centre
    shift = np.stack([g["tx"], g["ty"]], -1)
    return centre + np.einsum("tij,tnj->tni", m, local) + shift[:, None, :]


def curve_samples(frames: np.ndarray, spans: np.ndarray, n: int = 9) -> np.ndarray:
    """Points on the Bezier curves themselves (not the control hull): (..., segments * n, 2)."""
    starts = np.concatenate([np.arange(a, b - 1, 3) for a, b in spans]) if len(spans) else np.zeros(0, int)
    t = np.linspace(0, 1, n)[:, None]
    basis = np.concatenate([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3], 1)  # (n, 4)
    ctrl = np.stack([frames[..., starts + k, :] for k in range(4)], -2)  # (..., S, 4, 2)
    return np.einsum("nk,...skd->...snd", basis, ctrl).reshape(*frames.shape[:-2], -1, 2)


def fit_to_canvas(frames: np.ndarray, sketch: Sketch, pad: float = 0.02) -> np.ndarray:
    """One zoom/shift for the whole clip so every stroke (width included) stays on the canvas."""
    margin = float(sketch.widths.max(initial=0.0)) / 2 + pad
    samples = curve_samples(frames, sketch.spans).reshape(-1, 2)
    lo, hi = samples.min(0), samples.max(0)
    room = 1 - 2 * margin
    scale = min(1.0, room / max(hi[0] - lo[0], 1e-9), room / max(hi[1] - lo[1], 1e-9))
    mid = (lo + hi) / 2
    new_lo, new_hi = mid + (lo - mid) * scale, mid + (hi - mid) * scale
    shift = np.maximum(margin - new_lo, 0) - np.maximum(new_hi - (1 - margin), 0)
    if scale == 1.0 and not shift.any():
        return frames
    return mid + (frames - mid) * scale + shift


def animate(sketch: Sketch, program: str, frames: int, seed: int) -> np.ndarray:
    """Control points for every frame, shape (frames, N, 2), on the unit canvas."""
    program = ALIASES.get(program, program)
    if program not in PROGRAMS:
        raise ValueError(f"unknown motion program {program!r}; choose from {', '.join(PROGRAMS)}")
    rng = np.random.default_rng(seed)
    samples = curve_samples(sketch.points[None], sketch.spans)[0]
    cycles = int(rng.integers(1, 3)) if frames >= 16 else 1
    theta = 2 * np.pi * cycles * np.arange(frames) / frames
    u = np.arange(frames) / max(frames - 1, 1)
    ctx = _Ctx(sketch.points, samples.min(0), samples.max(0), theta, u, rng, rng.uniform(0.75, 1.25))
    g, d = _program(program, ctx)
    if program not in ONE_SHOT:  # loops start from the rest pose: frame 0 is the input sketch
        for k in ("tx", "ty", "rot", "shear"):
            g[k] = g[k] - g[k][0]
        g["sx"], g["sy"] = g["sx"] / g["sx"][0], g["sy"] / g["sy"][0]
        d = d - d[:1]
    out = _apply(sketch.points, ctx.centre, g, d)
    return fit_to_canvas(out, sketch)
