"""Rasterise sketches: black anti-aliased strokes (and ink-filled shapes) on white, grayscale uint8.

Two back ends give the same picture:
  * "cairo"    draws the Bezier control points straight onto an 8-bit alpha surface with cairocffi
               (the library cairosvg itself draws with): no SVG text is written or parsed. Fast.
  * "cairosvg" writes our own clean SVG (svg_io.to_svg) and renders it with cairosvg.svg2png
               (never unsafe mode), then decodes the PNG with Pillow. Slower; a reference.
"""

from __future__ import annotations

import io

import cairocffi as cairo
import numpy as np

from data_gen.svg_io import Limits, Sketch, read_svg_file, to_svg

RENDERERS = ("cairo", "cairosvg")


def _widths(sketch: Sketch, size: int, stroke_width: float | None) -> np.ndarray:
    if stroke_width is not None:
        return np.full(len(sketch.spans), float(stroke_width))
    return np.maximum(sketch.widths * size, 0.5)


class CairoRenderer:
    """Reuses one A8 surface; coverage is drawn as alpha and inverted to ink-on-white."""

    def __init__(self, size: int, stroke_width: float | None = None) -> None:
        self.size = size
        self.stroke_width = stroke_width
        self.surface = cairo.ImageSurface(cairo.FORMAT_A8, size, size)
        self.stride = self.surface.get_stride()

    def __call__(self, sketch: Sketch, points: np.ndarray | None = None) -> np.ndarray:
        pts = (sketch.points if points is None else points) * self.size
        ctx = cairo.Context(self.surface)
        ctx.set_operator(cairo.OPERATOR_CLEAR)
        ctx.paint()
        ctx.set_operator(cairo.OPERATOR_OVER)
        ctx.set_line_cap(cairo.LINE_CAP_ROUND)
        ctx.set_line_join(cairo.LINE_JOIN_ROUND)
        ctx.set_source_rgba(0, 0, 0, 1)
        coords = pts.tolist()
        spans = sketch.spans.tolist()
        for idx, evenodd in sketch.fill_groups():  # filled shapes: their inside is ink too
            ctx.new_path()
            for k in idx:
                a, b = spans[k]
                ctx.move_to(*coords[a])
                for i in range(a + 1, b, 3):
                    (x1, y1), (x2, y2), (x3, y3) = coords[i : i + 3]
                    ctx.curve_to(x1, y1, x2, y2, x3, y3)
                ctx.close_path()
            ctx.set_fill_rule(cairo.FILL_RULE_EVEN_ODD if evenodd else cairo.FILL_RULE_WINDING)
            ctx.fill()
        for (a, b), closed, w in zip(
            spans,
            sketch.closed.tolist(),
            _widths(sketch, self.size, self.stroke_width).tolist(),
            strict=True,
        ):
            ctx.move_to(*coords[a])
            for i in range(a + 1, b, 3):
                (x1, y1), (x2, y2), (x3, y3) = coords[i : i + 3]
                ctx.curve_to(x1, y1, x2, y2, x3, y3)
            if closed:
                ctx.close_path()
            ctx.set_line_width(w)
            ctx.stroke()
        self.surface.flush()
        alpha = np.frombuffer(self.surface.get_data(), np.uint8).reshape(self.size, self.stride)
        return 255 - alpha[:, : self.size]


class CairoSvgRenderer:
    """Round-trips through a clean SVG string and cairosvg (safe mode)."""

    def __init__(self, size: int, stroke_width: float | None = None) -> None:
        self.size = size
        self.stroke_width = stroke_width

    def __call__(self, sketch: Sketch, points: np.ndarray | None = None) -> np.ndarray:
        import cairosvg
        from PIL import Image

        sk = sketch if points is None else sketch.with_points(points)
        widths = _widths(sk, self.size, self.stroke_width)
        svg = to_svg(
            Sketch(sk.points, sk.spans, sk.closed, widths / self.size, sk.fills, sk.fill_evenodd), self.size
        )
        png = cairosvg.svg2png(
            bytestring=svg.encode(), output_width=self.size, output_height=self.size, unsafe=False
        )
        with Image.open(io.BytesIO(png)) as im:
            im = im.convert("RGBA")
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, im).convert("L"), dtype=np.uint8).copy()


def make_renderer(name: str, size: int, stroke_width: float | None = None):
    if name == "cairo":
        return CairoRenderer(size, stroke_width)
    if name == "cairosvg":
        return CairoSvgRenderer(size, stroke_width)
    raise ValueError(f"unknown renderer {name!r}; choose from {', '.join(RENDERERS)}")


def render_clip(sketch: Sketch, frames: np.ndarray, renderer) -> np.ndarray:
    """(T, N, 2) control points -> (T, H, W) uint8 clip."""
    return np.stack([renderer(sketch, f) for f in frames])


def render_svg_file(
    path, size: int = 256, stroke_width: float | None = None, limits: Limits = Limits()
) -> np.ndarray:
    """An untrusted SVG file -> (size, size) uint8 ink on white, through the safe reader
    (svg_io.read_svg_file: no external references, bounded size; only geometry is kept) and the
    cairo back end. Raises svg_io.SvgError (a ValueError) saying why a file is refused. The
    benchmarks, flipsketch-animate and the web app all read SVG sketches with it."""
    return CairoRenderer(int(size), stroke_width)(read_svg_file(path, limits))
