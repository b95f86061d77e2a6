"""SVG geometry -> cubic Bezier chains.

Every drawable element becomes one or more *subpaths*: a float array of shape (1 + 3n, 2) holding
the start point followed by n cubic segments (control 1, control 2, end). Lines, quadratics, arcs
and basic shapes are converted exactly (arcs to within a tiny tolerance), so the motion model only
ever deals with cubic control points, as Live-Sketch does.
"""

from __future__ import annotations

import math
import re

import numpy as np

Subpath = tuple[np.ndarray, bool]  # (points (1+3n, 2), closed)

KAPPA = 0.5522847498307936  # control-point distance for a quarter circle of radius 1

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_COMMANDS = set("MmLlHhVvCcSsQqTtAaZz")


class PathError(ValueError):
    """Path data or a transform that cannot be parsed."""


def _tokens(d: str):
    """Yield command letters and numbers (arc flags are read as single digits by the parser)."""
    i, n = 0, len(d)
    while i < n:
        c = d[i]
        if c in " \t\r\n,":
            i += 1
        elif c in _COMMANDS:
            yield c
            i += 1
        else:
            m = _NUMBER.match(d, i)
            if not m:
                raise PathError(f"unexpected character {c!r} in path data")
            yield m.group()
            i = m.end()


class _Builder:
    def __init__(self) -> None:
        self.subpaths: list[Subpath] = []
        self.pts: list[tuple[float, float]] = []
        self.cur = (0.0, 0.0)
        self.start = (0.0, 0.0)

    def move(self, p):
        self.flush(False)
        self.pts = [p]
        self.cur = self.start = p

    def _ensure(self):
        if not self.pts:
            self.pts = [self.cur]
            self.start = self.cur

    def cubic(self, c1, c2, p):
        self._ensure()
        self.pts += [c1, c2, p]
        self.cur = p

    def line(self, p):
        x0, y0 = self.cur
        x1, y1 = p
        self.cubic(
            (x0 + (x1 - x0) / 3, y0 + (y1 - y0) / 3), (x0 + 2 * (x1 - x0) / 3, y0 + 2 * (y1 - y0) / 3), p
        )

    def quad(self, q, p):
        x0, y0 = self.cur
        c1 = (x0 + 2 / 3 * (q[0] - x0), y0 + 2 / 3 * (q[1] - y0))
        c2 = (p[0] + 2 / 3 * (q[0] - p[0]), p[1] + 2 / 3 * (q[1] - p[1]))
        self.cubic(c1, c2, p)

    def close(self):
        if self.pts:
            if self.pts[-1] != self.start:
                self.line(self.start)
            self.flush(True)
        self.cur = self.start

    def flush(self, closed: bool):
        if len(self.pts) >= 4:
            self.subpaths.append((np.asarray(self.pts, dtype=np.float64), closed))
        self.pts = []


def _arc(b: _Builder, rx, ry, phi_deg, large, sweep, p):
    """Endpoint-parameterised elliptical arc -> cubic segments of at most 90 degrees each."""
    x1, y1 = b.cur
    x2, y2 = p
    if (x1, y1) == (x2, y2):
        return
    rx, ry = abs(rx), abs(ry)
    if rx == 0 or ry == 0:
        b.line(p)
        return
    phi = math.radians(phi_deg % 360)
    cos_p, sin_p = math.cos(phi), math.sin(phi)
    dx, dy = (x1 - x2) / 2, (y1 - y2) / 2
    x1p, y1p = cos_p * dx + sin_p * dy, -sin_p * dx + cos_p * dy
    lam = (x1p / rx) ** 2 + (y1p / ry) ** 2
    if lam > 1:
        rx, ry = rx * math.sqrt(lam), ry * math.sqrt(lam)
    num = rx * rx * ry * ry - rx * rx * y1p * y1p - ry * ry * x1p * x1p
    den = rx * rx * y1p * y1p + ry * ry * x1p * x1p
    coef = math.sqrt(max(num, 0.0) / den) if den else 0.0
    if large == sweep:
        coef = -coef
    cxp, cyp = coef * rx * y1p / ry, -coef * ry * x1p / rx
    cx = cos_p * cxp - sin_p * cyp + (x1 + x2) / 2
    cy = sin_p * cxp + cos_p * cyp + (y1 + y2) / 2

    def angle(ux, uy, vx, vy):
        return math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)

    t1 = angle(1, 0, (x1p - cxp) / rx, (y1p - cyp) / ry)
    dt = angle((x1p - cxp) / rx, (y1p - cyp) / ry, (-x1p - cxp) / rx, (-y1p - cyp) / ry)
    if not sweep and dt > 0:
        dt -= 2 * math.pi
    elif sweep and dt < 0:
        dt += 2 * math.pi
    n = max(1, math.ceil(abs(dt) / (math.pi / 2) - 1e-9))
    step = dt / n
    k = 4 / 3 * math.tan(step / 4)

    def on_ellipse(t):
        ex, ey = rx * math.cos(t), ry * math.sin(t)
        return (cx + cos_p * ex - sin_p * ey, cy + sin_p * ex + cos_p * ey)

    def deriv(t):
        ex, ey = -rx * math.sin(t), ry * math.cos(t)
        return (cos_p * ex - sin_p * ey, sin_p * ex + cos_p * ey)

    for i in range(n):
        a, c = t1 + i * step, t1 + (i + 1) * step
        pa, pc = on_ellipse(a), on_ellipse(c)
        da, dc = deriv(a), deriv(c)
        end = p if i == n - 1 else pc
        b.cubic((pa[0] + k * da[0], pa[1] + k * da[1]), (pc[0] - k * dc[0], pc[1] - k * dc[1]), end)


def parse_path_d(d: str, max_segments: int = 100_000) -> list[Subpath]:
    """Parse an SVG path `d` attribute (all commands, absolute and relative) into cubic subpaths."""
    toks = list(_tokens(d))
    b = _Builder()
    i, cmd = 0, None
    last_ctrl: tuple[float, float] | None = None  # reflected by S/T
    last_kind = ""
    segments = 0

    def num():
        nonlocal i
        if i >= len(toks) or toks[i] in _COMMANDS:
            raise PathError("path data ends in the middle of a command")
        v = float(toks[i])
        i += 1
        if not math.isfinite(v):
            raise PathError("non-finite number in path data")
        return v

    def flag():
        nonlocal i
        if i >= len(toks) or toks[i] in _COMMANDS:
            raise PathError("missing arc flag")
        t = toks[i]
        if t in ("0", "1"):
            i += 1
            return t == "1"
        if t[0] in "01" and len(t) > 1:  # compact flags: "105" -> 1, then "05"
            toks[i] = t[1:]
            return t[0] == "1"
        raise PathError(f"bad arc flag {t!r}")

    while i < len(toks):
        if toks[i] in _COMMANDS:
            cmd = toks[i]
            i += 1
        elif cmd is None:
            raise PathError("path data must start with a command")
        elif cmd in "Zz":
            raise PathError("numbers after Z")
        up, rel = cmd.upper(), cmd.islower()
        ox, oy = b.cur if rel else (0.0, 0.0)
        kind = up
        if up == "Z":
            b.close()
            last_ctrl, last_kind = None, "Z"
            if i < len(toks) and toks[i] not in _COMMANDS:
                raise PathError("numbers after Z")
            continue
        if up == "M":
            p = (ox + num(), oy + num())
            b.move(p)
            cmd = "l" if rel else "L"  # further pairs are implicit line-tos
            last_kind = "M"
            continue
        segments += 1
        if segments > max_segments:
            raise PathError(f"more than {max_segments} path segments")
        if up == "L":
            b.line((ox + num(), oy + num()))
        elif up == "H":
            b.line((ox + num(), b.cur[1]))
        elif up == "V":
            b.line((b.cur[0], oy + num()))
        elif up == "C":
            c1 = (ox + num(), oy + num())
            c2 = (ox + num(), oy + num())
            p = (ox + num(), oy + num())
            b.cubic(c1, c2, p)
            last_ctrl = c2
        elif up == "S":
            cx, cy = b.cur
            c1 = (
                (2 * cx - last_ctrl[0], 2 * cy - last_ctrl[1])
                if last_kind in ("C", "S") and last_ctrl
                else (cx, cy)
            )
            c2 = (ox + num(), oy + num())
            p = (ox + num(), oy + num())
            b.cubic(c1, c2, p)
            last_ctrl = c2
        elif up == "Q":
            q = (ox + num(), oy + num())
            p = (ox + num(), oy + num())
            b.quad(q, p)
            last_ctrl = q
        elif up == "T":
            cx, cy = b.cur
            q = (
                (2 * cx - last_ctrl[0], 2 * cy - last_ctrl[1])
                if last_kind in ("Q", "T") and last_ctrl
                else (cx, cy)
            )
            p = (ox + num(), oy + num())
            b.quad(q, p)
            last_ctrl = q
        elif up == "A":
            rx, ry, rot = num(), num(), num()
            large, sweep = flag(), flag()
            _arc(b, rx, ry, rot, large, sweep, (ox + num(), oy + num()))
        last_kind = kind
        if kind in ("L", "H", "V", "A"):
            last_ctrl = None
    b.flush(False)
    return b.subpaths


def polyline(points: list[tuple[float, float]], closed: bool) -> list[Subpath]:
    """Straight segments through `points` as one cubic subpath."""
    if len(points) < 2:
        return []
    b = _Builder()
    b.move(points[0])
    for p in points[1:]:
        b.line(p)
    if closed:
        b.close()
    b.flush(False)
    return b.subpaths


def ellipse(cx: float, cy: float, rx: float, ry: float) -> list[Subpath]:
    """A closed ellipse as four cubic quarter arcs."""
    if rx <= 0 or ry <= 0:
        return []
    kx, ky = KAPPA * rx, KAPPA * ry
    pts = [
        (cx + rx, cy),
        (cx + rx, cy + ky), (cx + kx, cy + ry), (cx, cy + ry),
        (cx - kx, cy + ry), (cx - rx, cy + ky), (cx - rx, cy),
        (cx - rx, cy - ky), (cx - kx, cy - ry), (cx, cy - ry),
        (cx + kx, cy - ry), (cx + rx, cy - ky), (cx + rx, cy),
    ]  # fmt: skip
    return [(np.asarray(pts, dtype=np.float64), True)]


_TRANSFORM = re.compile(r"\s*(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^()]*)\)\s*,?")


def parse_transform(text: str | None) -> np.ndarray:
    """SVG `transform` attribute -> 3x3 matrix (identity when absent)."""
    m = np.eye(3)
    if not text or not text.strip():
        return m
    pos = 0
    text = text.strip()
    while pos < len(text):
        g = _TRANSFORM.match(text, pos)
        if not g:
            raise PathError("bad transform attribute")
        pos = g.end()
        name = g.group(1)
        args = [float(v) for v in _NUMBER.findall(g.group(2))]
        if not all(math.isfinite(v) for v in args):
            raise PathError("non-finite transform")
        t = np.eye(3)
        try:
            if name == "matrix":
                a, b, c, d, e, f = args
                t[:2] = [[a, c, e], [b, d, f]]
            elif name == "translate":
                t[0, 2] = args[0]
                t[1, 2] = args[1] if len(args) > 1 else 0.0
            elif name == "scale":
                t[0, 0] = args[0]
                t[1, 1] = args[1] if len(args) > 1 else args[0]
            elif name == "rotate":
                r = math.radians(args[0])
                rot = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
                if len(args) == 3:
                    cx, cy = args[1], args[2]
                    pre, post = np.eye(3), np.eye(3)
                    pre[:2, 2] = [cx, cy]
                    post[:2, 2] = [-cx, -cy]
                    rot = pre @ rot @ post
                t = rot
            elif name == "skewX":
                t[0, 1] = math.tan(math.radians(args[0]))
            elif name == "skewY":
                t[1, 0] = math.tan(math.radians(args[0]))
        except (IndexError, ValueError) as exc:
            raise PathError(f"bad {name}() transform") from exc
        m = m @ t
    return m
