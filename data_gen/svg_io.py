"""Safe SVG loading (untrusted input) and clean SVG writing.

Loading never follows anything outside the file: the XML is parsed with defusedxml with DTDs,
entities and external references forbidden; files are size-bounded and must be regular files;
`<image>`, `<use>`, `<script>`, `<foreignObject>` and any non-local `href` / `url(...)` reject the
file. Only geometry is kept (paths and basic shapes, with their transforms, stroke widths and
whether they are filled with ink),
normalised to a unit square canvas; nothing from the input is ever handed to a renderer.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from data_gen.paths import PathError, ellipse, parse_path_d, parse_transform, polyline

DEFAULT_STROKE_WIDTH = 2.0  # in source canvas units, when a sketch does not say


class SvgError(ValueError):
    """An SVG that is malformed, unsupported or unsafe; the message says why (one line)."""


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 2_000_000
    max_canvas: float = 4096.0
    max_segments: int = 20_000


@dataclass
class Sketch:
    """Cubic Bezier strokes on a unit square canvas ([0,1] x [0,1], y down).

    `points` holds every control point of every subpath; subpath i is
    points[spans[i, 0]:spans[i, 1]] (1 + 3n points), `closed[i]` and `widths[i]` (canvas units).
    `fills[i]` > 0 marks a subpath whose inside is painted with ink: the subpaths sharing one value
    came from one filled SVG shape and are filled together (so holes stay open), with the even-odd
    rule where `fill_evenodd[i]`, else non-zero (SVG's default). None: nothing is filled.
    """

    points: np.ndarray
    spans: np.ndarray
    closed: np.ndarray
    widths: np.ndarray
    fills: np.ndarray | None = None
    fill_evenodd: np.ndarray | None = None

    def with_points(self, points: np.ndarray) -> Sketch:
        return Sketch(points, self.spans, self.closed, self.widths, self.fills, self.fill_evenodd)

    def fill_groups(self) -> list[tuple[list[int], bool]]:
        """[(subpath indices, even-odd rule)] per filled shape, in drawing order."""
        if self.fills is None:
            return []
        groups: dict[int, list[int]] = {}
        for i, g in enumerate(np.asarray(self.fills).tolist()):
            if g > 0:
                groups.setdefault(int(g), []).append(i)
        evenodd = np.zeros(len(self.spans), bool) if self.fill_evenodd is None else self.fill_evenodd
        return [(idx, bool(evenodd[idx[0]])) for _, idx in sorted(groups.items())]


_SKIP_CONTAINERS = {
    "defs",
    "clipPath",
    "mask",
    "symbol",
    "marker",
    "pattern",
    "metadata",
    "title",
    "desc",
    "style",
}
_FORBIDDEN = {"image", "use", "script", "foreignObject", "iframe", "feImage", "animate", "set"}
_SHAPES = {"path", "line", "polyline", "polygon", "rect", "circle", "ellipse"}
_BAD_URL = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.I)
_IMPORT = re.compile(r"@import", re.I)
_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
_LENGTH = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-z]*)\s*$")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _length(value: str | None) -> float | None:
    if value is None:
        return None
    m = _LENGTH.match(value)
    if not m or m.group(2) not in _UNITS:
        return None  # percentages, em, ... : fall back to the viewBox
    v = float(m.group(1)) * _UNITS[m.group(2)]
    return v if math.isfinite(v) else None


def _style(el: Element) -> dict[str, str]:
    out = {}
    for item in el.get("style", "").split(";"):
        if ":" in item:
            k, v = item.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def _check_safe(el: Element) -> None:
    name = _local(el.tag)
    if name in _FORBIDDEN:
        raise SvgError(f"<{name}> is not allowed (external or active content)")
    for key, value in el.attrib.items():
        if _local(key) == "href" and not value.strip().startswith("#"):
            raise SvgError("href to a file or URL is not allowed")
        if "url(" in value.lower() and _BAD_URL.search(value):
            raise SvgError("url() reference to a file or URL is not allowed")
    if name == "style" and el.text and (_BAD_URL.search(el.text) or _IMPORT.search(el.text)):
        raise SvgError("external reference in <style> is not allowed")


def _canvas(root: Element, limits: Limits) -> tuple[float, float, float, float] | None:
    width, height = _length(root.get("width")), _length(root.get("height"))
    box = None
    if root.get("viewBox"):
        try:
            box = [float(v) for v in re.split(r"[\s,]+", root.get("viewBox").strip())]
        except ValueError as exc:
            raise SvgError("bad viewBox") from exc
        if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
            raise SvgError("bad viewBox")
    for v in (width, height, *(box[2:] if box else ())):
        if v is not None and v > limits.max_canvas:
            raise SvgError(f"canvas larger than {limits.max_canvas:g} (got {v:g})")
    if box:
        if abs(box[0]) > limits.max_canvas or abs(box[1]) > limits.max_canvas:
            raise SvgError("viewBox origin out of range")
        return tuple(box)
    if width and height and width > 0 and height > 0:
        return (0.0, 0.0, width, height)
    return None


_BLANK = {"none", "transparent", "white", "#fff", "#ffffff", "rgb(255,255,255)"}


def _zero_opacity(value: str | None) -> bool:
    try:
        return value is not None and float(value.strip().rstrip("%")) <= 0
    except ValueError:
        return False


def _is_filled(attrs: dict[str, str]) -> bool:
    """Filled with ink: SVG's default fill is black; white, none and transparent fills are paper."""
    if _zero_opacity(attrs.get("fill-opacity")):
        return False
    return attrs.get("fill", "black").replace(" ", "").lower() not in _BLANK


def _is_drawn(attrs: dict[str, str]) -> bool:
    """Stroked shapes are drawn; unstroked ones only when filled with ink (their outline is drawn
    too, and their inside painted). This keeps white background rectangles and invisible helpers
    out of the sketch.
    """
    stroke = attrs.get("stroke", "").replace(" ", "").lower()
    if stroke and stroke not in _BLANK and not _zero_opacity(attrs.get("stroke-opacity")):
        return True
    return _is_filled(attrs)


def _shape_subpaths(el: Element, name: str, limits: Limits):
    def f(key, default=0.0):
        v = _length(el.get(key))
        return default if v is None else v

    if name == "path":
        return parse_path_d(el.get("d", ""), limits.max_segments)
    if name == "line":
        return polyline([(f("x1"), f("y1")), (f("x2"), f("y2"))], False)
    if name in ("polyline", "polygon"):
        nums = [
            float(v) for v in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", el.get("points", ""))
        ]
        if len(nums) // 2 > limits.max_segments:
            raise SvgError("too many points")
        return polyline(list(zip(nums[0::2], nums[1::2], strict=False)), name == "polygon")
    if name == "rect":
        x, y, w, h = f("x"), f("y"), f("width"), f("height")
        if w <= 0 or h <= 0:
            return []
        return polyline([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], True)
    if name == "circle":
        return ellipse(f("cx"), f("cy"), f("r"), f("r"))
    if name == "ellipse":
        return ellipse(f("cx"), f("cy"), f("rx"), f("ry"))
    return []


def parse_svg_bytes(data: bytes, limits: Limits = Limits()) -> Sketch:
    """Parse untrusted SVG bytes into a normalised `Sketch`; raises `SvgError` with the reason.

    Numbers that overflow (a scale(1e200), a stroke-width of 1e308) are a refusal, never a numpy
    warning on stderr nor a blank picture."""
    try:
        with np.errstate(all="raise"):
            return _parse_svg_bytes(data, limits)
    except FloatingPointError as exc:
        raise SvgError(f"numbers out of range ({exc})") from None


def _parse_svg_bytes(data: bytes, limits: Limits) -> Sketch:
    if len(data) > limits.max_file_bytes:
        raise SvgError(f"file larger than {limits.max_file_bytes} bytes")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise SvgError(f"unsafe XML rejected ({type(exc).__name__})") from exc
    except (ParseError, ValueError, UnicodeError) as exc:
        raise SvgError(f"not well-formed XML ({str(exc).splitlines()[0][:80]})") from exc
    if _local(root.tag) != "svg":
        raise SvgError(f"root element is <{_local(root.tag)}>, not <svg>")
    for el in root.iter():
        _check_safe(el)
    canvas = _canvas(root, limits)

    raw: list[tuple[np.ndarray, bool, float, int, bool]] = []
    segments = 0
    shapes = 0
    # iterative walk: (element, parent transform, inherited presentation attributes)
    stack: list[tuple[Element, np.ndarray, dict]] = [(root, np.eye(3), {})]
    while stack:
        el, parent_m, inherited = stack.pop()
        name = _local(el.tag)
        style = _style(el)
        if name in _SKIP_CONTAINERS or "none" in (el.get("display"), style.get("display")):
            continue
        try:
            m = parent_m @ parse_transform(el.get("transform"))
        except PathError as exc:
            raise SvgError(str(exc)) from exc
        attrs = dict(inherited)
        for key in ("stroke", "fill", "stroke-width", "fill-rule", "fill-opacity", "stroke-opacity"):
            value = style.get(key) or el.get(key)
            if value is not None:
                attrs[key] = value.strip()
        if name in _SHAPES and _is_drawn(attrs):
            try:
                subs = _shape_subpaths(el, name, limits)
            except (PathError, ValueError) as exc:
                raise SvgError(f"bad <{name}>: {exc}") from exc
            width = _length(attrs.get("stroke-width"))
            width = DEFAULT_STROKE_WIDTH if width is None or width < 0 else width
            if width > limits.max_canvas:
                raise SvgError(f"stroke-width {width:g} out of range (at most {limits.max_canvas:g})")
            width *= math.sqrt(abs(np.linalg.det(m[:2, :2])))
            shapes += 1
            fill = shapes if _is_filled(attrs) and name != "line" else 0
            evenodd = attrs.get("fill-rule", "").lower() == "evenodd"
            for pts, closed in subs:
                segments += (len(pts) - 1) // 3
                if segments > limits.max_segments:
                    raise SvgError(f"more than {limits.max_segments} path segments")
                raw.append((pts @ m[:2, :2].T + m[:2, 2], closed, width, fill, evenodd))
        stack.extend((child, m, attrs) for child in reversed(list(el)))
    if not raw:
        raise SvgError("no drawable paths")
    return _normalise(raw, canvas, limits)


def _normalise(raw, canvas, limits: Limits) -> Sketch:
    pts = np.concatenate([r[0] for r in raw])
    if not np.isfinite(pts).all() or np.abs(pts).max() > 100 * limits.max_canvas:
        raise SvgError("coordinates out of range")
    if canvas is None:  # no size given: frame the drawing itself with a small margin
        lo, hi = pts.min(0), pts.max(0)
        pad = 0.05 * max(float((hi - lo).max()), 1.0)
        canvas = (lo[0] - pad, lo[1] - pad, hi[0] - lo[0] + 2 * pad, hi[1] - lo[1] + 2 * pad)
    x, y, w, h = canvas
    side = max(w, h)  # preserve aspect ratio, centre the shorter axis (xMidYMid meet)
    offset = np.array([x - (side - w) / 2, y - (side - h) / 2])
    widths = np.array([r[2] for r in raw], dtype=np.float64) / side
    if not np.isfinite(widths).all() or widths.max() > 1.0:
        raise SvgError("a stroke wider than the canvas (it would paint the whole picture)")
    lengths = [len(r[0]) for r in raw]
    ends = np.cumsum(lengths)
    spans = np.stack([ends - lengths, ends], axis=1).astype(np.int64)
    return Sketch(
        points=(pts - offset) / side,
        spans=spans,
        closed=np.array([r[1] for r in raw], dtype=bool),
        widths=widths,
        fills=np.array([r[3] for r in raw], dtype=np.int64),
        fill_evenodd=np.array([r[4] for r in raw], dtype=bool),
    )


def read_svg_file(path: Path, limits: Limits = Limits(), root: Path | None = None) -> Sketch:
    """Load an untrusted SVG file: regular file only, inside `root` when given, size-bounded."""
    path = Path(path)
    try:
        real = path.resolve(strict=True)
        if root is not None and not real.is_relative_to(Path(root).resolve()):
            raise SvgError("symlink pointing outside the input folder")
        st = os.stat(real)
        if not stat.S_ISREG(st.st_mode):
            raise SvgError("not a regular file")
        if st.st_size > limits.max_file_bytes:
            raise SvgError(f"file larger than {limits.max_file_bytes} bytes")
        with open(real, "rb") as fh:
            data = fh.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise SvgError(f"cannot read ({exc.strerror or exc})") from exc
    return parse_svg_bytes(data, limits)


def _fmt(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def to_svg(sketch: Sketch, size: int = 256, stroke_width: float | None = None) -> str:
    """A clean SVG document for `sketch`: white background, black stroked paths, nothing else."""
    p = sketch.points * size
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}">',
        f'<rect width="{size}" height="{size}" fill="#ffffff"/>',
    ]

    def path_data(k: int, close: bool) -> str:
        a, b = sketch.spans[k]
        d = [f"M{_fmt(p[a, 0])} {_fmt(p[a, 1])}"]
        for i in range(a + 1, b, 3):
            d.append("C" + " ".join(f"{_fmt(x)} {_fmt(y)}" for x, y in p[i : i + 3]))
        if close:
            d.append("Z")
        return "".join(d)

    fills = np.zeros(len(sketch.spans), np.int64) if sketch.fills is None else np.asarray(sketch.fills)
    evenodd = np.zeros(len(sketch.spans), bool) if sketch.fill_evenodd is None else sketch.fill_evenodd
    k = 0
    while k < len(sketch.spans):  # one <path> per shape: a filled shape's subpaths stay together
        end = k + 1
        while fills[k] > 0 and end < len(sketch.spans) and fills[end] == fills[k]:
            end += 1
        w = sketch.widths[k]
        sw = stroke_width if stroke_width is not None else w * size
        d = "".join(path_data(i, bool(sketch.closed[i])) for i in range(k, end))
        fill = f'"#000000" fill-rule="{"evenodd" if evenodd[k] else "nonzero"}"' if fills[k] > 0 else '"none"'
        parts.append(
            f'<path d="{d}" fill={fill} stroke="#000000" stroke-width="{_fmt(sw)}" '
            'stroke-linecap="round" stroke-linejoin="round"/>'
        )
        k = end
    parts.append("</svg>")
    return "\n".join(parts)
