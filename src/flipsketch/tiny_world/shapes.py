"""Procedural base-domain clips for the tiny world: shapes that move, with a caption.

The base model learns motion on a broader domain than sketches (as ModelScope learnt it on real
videos): filled shapes in grey levels, textured shapes (stripes, checks, dots), outlined shapes
and free scribbles, on white or light-grey paper. The LoRA step then adapts it to black-stroke
sketches. Everything is rendered in torch from signed distances, anti-aliased, deterministic
from a seed, and fast enough to draw every batch on the fly (no dataset on disk).

Motions use the same verbs as `data_gen`'s sketch captions (jump, spin, sway, float, walk, ...),
so the text conditioning the base learns carries over to the sketch domain. Frame 0 is the rest
pose, as FlipSketch expects of its input sketch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SHAPES = ("circle", "square", "triangle", "star", "blob", "ellipse", "diamond", "hexagon", "scribble")
FILLS = ("grey", "dark", "striped", "checkered", "dotted", "outlined")
# verb -> caption phrases; the motion itself is built in `_motion`.
MOTIONS: dict[str, tuple[str, ...]] = {
    "spin": ("spinning", "rotating"),
    "jump": ("jumping", "bouncing up and down", "hopping"),
    "sway": ("swaying", "rocking side to side"),
    "float": ("floating", "drifting", "bobbing"),
    "walk": ("walking forward", "running", "moving right"),
    "back": ("moving left", "walking backwards"),
    "rise": ("rising", "launching into the sky", "flying up"),
    "fall": ("falling", "sinking down"),
    "grow": ("growing", "getting bigger"),
    "shrink": ("shrinking", "getting smaller"),
    "wave": ("waving", "wiggling", "slithering"),
    "fly": ("flying", "flapping", "swimming"),
    "dance": ("dancing", "twirling"),
}
VERBS = tuple(MOTIONS)


@dataclass
class WorldConfig:
    size: int = 64
    frames: int = 8
    p_two: float = 0.2  # a second, still shape on the canvas (a distractor)
    p_grey_paper: float = 0.3  # light-grey instead of white paper


def _smooth(d: torch.Tensor) -> torch.Tensor:
    """Signed distance in pixels (positive inside) -> anti-aliased coverage in [0, 1]."""
    return (d + 0.5).clamp(0.0, 1.0)


def _local_coords(size: int, frames: int, cx, cy, ang, sx, sy, shear, tx, ty):
    """Pixel grid -> shape-local coordinates (in pixels) for each frame, inverse affine per frame."""
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    x = xs[None] - (cx + tx)[:, None, None]
    y = ys[None] - (cy + ty)[:, None, None]
    c, s = torch.cos(-ang)[:, None, None], torch.sin(-ang)[:, None, None]
    xr, yr = c * x - s * y, s * x + c * y
    xr = xr - shear[:, None, None] * yr
    return xr / sx[:, None, None], yr / sy[:, None, None], torch.minimum(sx, sy)[:, None, None]


def _polar_sdf(qx, qy, radius, k, amp, phase):
    r = torch.sqrt(qx**2 + qy**2 + 1e-8)
    phi = torch.atan2(qy, qx)
    return radius * (1 + amp * torch.cos(k * phi + phase)) - r


def _poly_sdf(qx, qy, radius, n, phase):
    phi = torch.atan2(qy, qx) - phase
    sector = 2 * math.pi / n
    a = torch.remainder(phi, sector) - sector / 2
    r = torch.sqrt(qx**2 + qy**2 + 1e-8)
    return radius * math.cos(math.pi / n) - r * torch.cos(a)


def _segment_dist(qx, qy, pts: torch.Tensor) -> torch.Tensor:
    """Distance from each grid point to a polyline `pts` (K, 2)."""
    a, b = pts[:-1], pts[1:]
    ab = b - a
    px, py = qx[..., None] - a[:, 0], qy[..., None] - a[:, 1]
    t = ((px * ab[:, 0] + py * ab[:, 1]) / (ab**2).sum(-1).clamp_min(1e-6)).clamp(0, 1)
    dx, dy = px - t * ab[:, 0], py - t * ab[:, 1]
    return torch.sqrt(dx**2 + dy**2 + 1e-8).min(-1).values


def _shape_sdf(name: str, qx, qy, r: float, g: torch.Generator) -> torch.Tensor:
    u = lambda lo, hi: float(torch.empty(()).uniform_(lo, hi, generator=g))  # noqa: E731
    if name == "circle":
        return r - torch.sqrt(qx**2 + qy**2 + 1e-8)
    if name == "ellipse":
        e = u(0.45, 0.75)
        return r * (1 - torch.sqrt((qx / r) ** 2 + (qy / (r * e)) ** 2 + 1e-8)) * e
    if name == "square":
        return r * 0.85 - torch.maximum(qx.abs(), qy.abs())
    if name == "diamond":
        return (r - (qx.abs() + qy.abs())) * 0.7071
    if name == "triangle":
        return _poly_sdf(qx, qy, r, 3, -math.pi / 2)
    if name == "hexagon":
        return _poly_sdf(qx, qy, r, 6, 0.0)
    if name == "star":
        return (
            _polar_sdf(qx, qy, r * 0.8, int(torch.randint(5, 7, (), generator=g)), 0.35, -math.pi / 2) * 0.6
        )
    # blob
    return _polar_sdf(qx, qy, r * 0.85, int(torch.randint(2, 5, (), generator=g)), u(0.1, 0.25), u(0, 6.28))


def _scribble_points(r: float, g: torch.Generator) -> torch.Tensor:
    """A smooth random open curve (Catmull-Rom through 4-6 points) in local pixel coordinates."""
    n = int(torch.randint(4, 7, (), generator=g))
    ctrl = (torch.rand(n, 2, generator=g) * 2 - 1) * r
    t = torch.linspace(0, 1, 8)[:-1, None]
    pts = []
    padded = torch.cat([ctrl[:1], ctrl, ctrl[-1:]])
    for i in range(1, n):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        pts.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    pts.append(ctrl[-1:])
    return torch.cat(pts)


def _motion(verb: str, frames: int, size: int, r: float, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Per-frame translation (tx, ty), rotation, scale (sx, sy) and shear; frame 0 at rest unless one-shot."""
    u = lambda lo, hi: float(torch.empty(()).uniform_(lo, hi, generator=g))  # noqa: E731
    t = torch.arange(frames, dtype=torch.float32) / max(frames - 1, 1)  # 0..1
    z = torch.zeros(frames)
    m = dict(
        tx=z.clone(),
        ty=z.clone(),
        ang=z.clone(),
        sx=torch.ones(frames),
        sy=torch.ones(frames),
        shear=z.clone(),
    )
    cyc = 2 * math.pi * t
    step = size * u(0.18, 0.32)
    if verb == "spin":
        m["ang"] = t * u(1.2, 2.2) * math.pi * (1 if u(0, 1) < 0.5 else -1)
    elif verb == "jump":
        m["ty"] = -step * torch.sin(cyc * 0.5 * round(u(1, 2.49))).abs()
        m["sy"] = 1 - 0.12 * torch.sin(cyc).clamp_max(0).abs()
    elif verb == "sway":
        m["ang"] = u(0.25, 0.45) * torch.sin(cyc)
        m["shear"] = 0.2 * torch.sin(cyc)
    elif verb == "float":
        m["ty"] = -0.35 * step * torch.sin(cyc)
        m["tx"] = 0.4 * step * t * (1 if u(0, 1) < 0.5 else -1)
    elif verb in ("walk", "back"):
        sign = 1 if verb == "walk" else -1
        m["tx"] = sign * step * t * 1.3
        m["ty"] = -0.12 * step * torch.sin(cyc * 2).abs()
    elif verb in ("rise", "fall"):
        m["ty"] = (-1 if verb == "rise" else 1) * step * t * 1.3
    elif verb == "grow":
        s = 0.55 + 0.45 * t
        m["sx"], m["sy"] = s, s.clone()
    elif verb == "shrink":
        s = 1 - 0.45 * t
        m["sx"], m["sy"] = s, s.clone()
    elif verb == "wave":
        m["shear"] = 0.45 * torch.sin(cyc)
        m["sx"] = 1 + 0.12 * torch.sin(2 * cyc)
    elif verb == "fly":
        m["tx"] = step * t * (1 if u(0, 1) < 0.5 else -1)
        m["sy"] = 1 - 0.35 * torch.sin(2 * cyc).abs()
    elif verb == "dance":
        m["ang"] = 0.35 * torch.sin(cyc)
        m["ty"] = -0.3 * step * torch.sin(2 * cyc).abs()
    else:  # pragma: no cover - guarded by VERBS
        raise ValueError(f"unknown motion {verb!r}")
    return m


def _fill_pattern(fill: str, qx, qy, g: torch.Generator) -> torch.Tensor:
    """Ink darkness inside the shape (0 = white, 1 = black), in shape-local coordinates."""
    u = lambda lo, hi: float(torch.empty(()).uniform_(lo, hi, generator=g))  # noqa: E731
    if fill == "grey":
        return torch.full_like(qx, u(0.3, 0.6))
    if fill == "dark":
        return torch.full_like(qx, u(0.75, 1.0))
    period = u(3.5, 6.0)
    if fill == "striped":
        a = u(0, math.pi)
        v = torch.sin((qx * math.cos(a) + qy * math.sin(a)) * 2 * math.pi / period)
        return torch.where(v > 0, u(0.6, 0.95), u(0.1, 0.3)) + 0 * qx
    if fill == "checkered":
        v = torch.sin(qx * 2 * math.pi / period) * torch.sin(qy * 2 * math.pi / period)
        return torch.where(v > 0, u(0.6, 0.95), u(0.05, 0.25)) + 0 * qx
    # dotted
    v = torch.cos(qx * 2 * math.pi / period) * torch.cos(qy * 2 * math.pi / period)
    return torch.where(v > 0.5, u(0.7, 1.0), u(0.0, 0.15)) + 0 * qx


def render_clip(
    seed: int, cfg: WorldConfig | None = None, verb: str | None = None
) -> tuple[torch.Tensor, str]:
    """One clip: (frames, size, size) float in [0, 1] (1 = white paper) and its caption."""
    cfg = cfg or WorldConfig()
    g = torch.Generator().manual_seed(int(seed))
    u = lambda lo, hi: float(torch.empty(()).uniform_(lo, hi, generator=g))  # noqa: E731
    pick = lambda seq: seq[int(torch.randint(len(seq), (), generator=g))]  # noqa: E731
    size, frames = cfg.size, cfg.frames
    verb = verb or pick(VERBS)
    shape = pick(SHAPES)
    fill = "outlined" if shape == "scribble" else pick(FILLS)
    r = size * u(0.16, 0.26)
    m = _motion(verb, frames, size, r, g)
    # keep the whole path on the canvas: start where the motion's extent fits
    margin = r * 1.15
    lo_x = margin - float(m["tx"].min())
    hi_x = size - margin - float(m["tx"].max())
    lo_y = margin - float(m["ty"].min())
    hi_y = size - margin - float(m["ty"].max())
    cx = torch.tensor(u(lo_x, hi_x) if hi_x > lo_x else (lo_x + hi_x) / 2)
    cy = torch.tensor(u(lo_y, hi_y) if hi_y > lo_y else (lo_y + hi_y) / 2)
    ang0 = u(-0.3, 0.3)
    qx, qy, smin = _local_coords(
        size,
        frames,
        cx.expand(frames),
        cy.expand(frames),
        m["ang"] + ang0,
        m["sx"],
        m["sy"],
        m["shear"],
        m["tx"],
        m["ty"],
    )
    width = u(1.0, 2.2)
    if shape == "scribble":
        pts = _scribble_points(r, g)
        cover = _smooth((width / 2 - _segment_dist(qx, qy, pts)) * smin)
        ink = cover * u(0.8, 1.0)
    else:
        d = _shape_sdf(shape, qx, qy, r, g) * smin  # approx. pixels
        inside = _smooth(d)
        line = _smooth(width / 2 - d.abs())
        if fill == "outlined":
            ink = line * u(0.8, 1.0)
        else:
            body = inside * _fill_pattern(fill, qx, qy, g)
            edge = line * (u(0.7, 1.0) if u(0, 1) < 0.6 else 0.0)
            ink = torch.maximum(body, edge)
    paper = 1.0 - (u(0.05, 0.18) if u(0, 1) < cfg.p_grey_paper else 0.0)
    img = paper * (1 - ink)
    if u(0, 1) < cfg.p_two:  # a still distractor drawn behind
        g2 = int(torch.randint(2**31 - 1, (), generator=g))
        still, _ = render_clip(g2, WorldConfig(size, 1, 0.0, 0.0), verb="spin")
        img = torch.minimum(
            img, still.expand(frames, -1, -1) * 0 + torch.maximum(still, 1 - (1 - still) * 0.6)
        )
    noun = "scribble" if shape == "scribble" else shape
    adj = {
        "grey": "grey",
        "dark": "black",
        "striped": "striped",
        "checkered": "checkered",
        "dotted": "dotted",
        "outlined": "outlined",
    }[fill]
    caption = f"a {adj} {noun} {pick(MOTIONS[verb])}"
    return img.clamp(0, 1), caption


def render_batch(seeds, cfg: WorldConfig | None = None) -> tuple[torch.Tensor, list[str]]:
    """(B, F, 3, H, W) in [-1, 1] (grey repeated to RGB, the VAE's input) and captions."""
    clips, caps = zip(*(render_clip(int(s), cfg) for s in seeds), strict=True)
    x = torch.stack(clips)[:, :, None].expand(-1, -1, 3, -1, -1)
    return x * 2 - 1, list(caps)
