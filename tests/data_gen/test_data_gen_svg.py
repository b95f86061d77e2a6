"""data_gen: SVG path parsing and safe loading of untrusted SVGs."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

import numpy as np
import pytest

from data_gen.build import GenConfig, generate
from data_gen.paths import parse_path_d, parse_transform
from data_gen.raster import make_renderer
from data_gen.svg_io import Limits, Sketch, SvgError, parse_svg_bytes, read_svg_file, to_svg

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">{}</svg>'


def _svg(body: str) -> bytes:
    return SVG.format(body).encode()


def test_path_commands_absolute_and_relative_agree():
    absolute = parse_path_d("M10 10 L20 10 C30 10 30 20 40 20 Q50 30 60 20 H70 V30 Z")
    relative = parse_path_d("m10 10 l10 0 c10 0 10 10 20 10 q10 10 20 0 h10 v10 z")
    assert len(absolute) == len(relative) == 1
    np.testing.assert_allclose(absolute[0][0], relative[0][0])
    assert absolute[0][1] is True
    pts = absolute[0][0]
    assert (len(pts) - 1) % 3 == 0
    np.testing.assert_allclose(pts[-1], [10, 10])  # closed back to the start


def test_smooth_and_arc_commands():
    ((pts, _),) = parse_path_d("M0 0 C10 0 20 10 20 20 S30 40 40 40")
    np.testing.assert_allclose(pts[4], [20, 30])  # reflected control point
    ((pts, _),) = parse_path_d("M0 0 Q10 10 20 0 T40 0")
    np.testing.assert_allclose(pts[-1], [40, 0])
    ((arc, _),) = parse_path_d("M0 0 A10 10 0 0 1 20 0")  # half circle through (10, -10) or (10, 10)
    t = np.linspace(0, 1, 50)[:, None]
    seg = [arc[i : i + 4] for i in range(0, len(arc) - 1, 3)]
    curve = np.concatenate(
        [
            (1 - t) ** 3 * s[0] + 3 * (1 - t) ** 2 * t * s[1] + 3 * (1 - t) * t**2 * s[2] + t**3 * s[3]
            for s in seg
        ]
    )
    np.testing.assert_allclose(np.linalg.norm(curve - [10, 0], axis=1), 10, atol=0.05)
    ((compact, _),) = parse_path_d("M0 0 a10,10 0 1020,0")  # flags written without separators
    np.testing.assert_allclose(compact[-1], [20, 0])


@pytest.mark.parametrize("bad", ["10 10", "M10", "M10 10 L5", "M 1 1 X 2 2", "M0 0 A1 1 0 2 0 3 3"])
def test_bad_path_data_raises(bad):
    with pytest.raises(ValueError):
        parse_path_d(bad)


def test_transforms_and_shapes():
    m = parse_transform("translate(10 20) rotate(90) scale(2)")
    np.testing.assert_allclose(m @ [1, 0, 1], [10, 22, 1], atol=1e-9)
    sk = parse_svg_bytes(
        _svg(
            '<g transform="translate(128 0)"><circle cx="0" cy="128" r="10"/></g>'
            '<line x1="0" y1="0" x2="256" y2="256"/><polygon points="10,10 20,10 20,20"/>'
            '<rect x="5" y="5" width="10" height="10"/><ellipse cx="50" cy="50" rx="5" ry="3"/>'
            '<defs><path d="M0 0 L1 1"/></defs>'
        )
    )
    assert len(sk.spans) == 5  # the <defs> path is not drawn
    circle = sk.points[sk.spans[0, 0] : sk.spans[0, 1]] * 256
    np.testing.assert_allclose(circle.mean(0)[0], 128, atol=3)


def test_normalised_to_unit_canvas_and_round_trip():
    sk = parse_svg_bytes(
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 256">'
        b'<path d="M0 0 L512 256" stroke-width="4"/></svg>'
    )
    np.testing.assert_allclose(sk.points[[0, -1]], [[0, 0.25], [1, 0.75]])  # wide canvas centred
    np.testing.assert_allclose(sk.widths, [4 / 512])
    again = parse_svg_bytes(to_svg(sk, 256).encode())
    np.testing.assert_allclose(again.points, sk.points, atol=1e-4)


@pytest.mark.parametrize("renderer", ["cairo", "cairosvg"])
def test_filled_shapes_render_as_ink_with_their_holes(renderer):
    sk = parse_svg_bytes(
        _svg(
            '<rect x="140" y="140" width="100" height="100" fill="#808080"/>'  # unstroked, filled grey
            '<path fill-rule="evenodd" fill="black" stroke="none" '
            'd="M10 10 h100 v100 h-100 z M40 40 h40 v40 h-40 z"/>'  # a square with a square hole
            '<circle cx="60" cy="190" r="40" fill="none" stroke="black" stroke-width="3"/>'  # outline
            '<circle cx="190" cy="60" r="40" stroke="black" fill-opacity="0"/>'  # invisible fill
        )
    )
    assert sk.fills.tolist() == [1, 2, 2, 0, 0] and sk.fill_evenodd.tolist() == [
        False,
        True,
        True,
        False,
        False,
    ]
    img = make_renderer(renderer, 256)(sk)
    assert img[190, 190] < 64  # inside the filled rectangle: ink
    assert img[30, 30] < 64 and img[60, 60] > 192  # the square is ink, its hole is paper
    assert img[190, 60] > 192 and img[60, 190] > 192  # unfilled circles: paper inside
    again = parse_svg_bytes(to_svg(sk, 256).encode())  # the clean SVG keeps the fills
    assert again.fills.tolist() == [1, 2, 2, 0, 0] and again.fill_evenodd.tolist() == sk.fill_evenodd.tolist()
    np.testing.assert_allclose(again.points, sk.points, atol=1e-4)


def test_sketch_built_without_fill_fields_still_renders():
    """Callers that build a Sketch from (points, spans, closed, widths) positionally keep working."""
    pts = np.array([[0.2, 0.2], [0.4, 0.2], [0.6, 0.2], [0.8, 0.2]])
    sk = Sketch(pts, np.array([[0, 4]]), np.array([False]), np.array([0.02]))
    assert sk.fills is None and sk.fill_groups() == []
    assert make_renderer("cairo", 64)(sk).min() < 64
    assert sk.with_points(pts + 0.1).fills is None


# ---------------------------------------------------------------- hostile input


def hostile_svgs(secret) -> dict[str, bytes]:
    laughs = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    return {
        "xxe": (
            f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file://{secret}">]>'
            + SVG.format('<path d="M0 0 L9 9"/><text>&xxe;</text>')
        ).encode(),
        "xxe_parameter": (
            f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>'
            + SVG.format('<path d="M0 0 L9 9"/>')
        ).encode(),
        "image_file": _svg('<path d="M0 0 L9 9"/><image href="file:///etc/passwd" width="10" height="10"/>'),
        "use_file": _svg(
            f'<path d="M0 0 L9 9"/><use xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="file://{secret}#a"/>'
        ),
        "style_url": _svg(f'<path d="M0 0 L9 9" style="fill:url(file://{secret})"/>'),
        "billion_laughs": (
            f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY l0 "ha">{laughs}]>'
            + SVG.format("<text>&l9;</text>")
        ).encode(),
        "huge_canvas": b'<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000">'
        b'<path d="M0 0 L9 9"/></svg>',
        "huge_viewbox": b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100000 100000">'
        b'<path d="M0 0 L9 9"/></svg>',
        "not_xml": b"this is not XML at all \x00\xff",
        "png_bytes": b"\x89PNG\r\n\x1a\n" + bytes(200),
        "not_svg_root": b'<html><path d="M0 0 L9 9"/></html>',
        "empty_svg": _svg(""),
        "bad_path": _svg('<path d="M0 0 L nope"/>'),
        "oversized": _svg('<path d="M0 0 L9 9"/><!--' + " " * 2_100_000 + "-->"),
    }


@contextlib.contextmanager
def record_opens():
    """Every path the interpreter opens while active (audit hook; stays installed but idle)."""
    seen: list[str] = []
    state = record_opens.__dict__.setdefault("state", {"active": None})
    if not record_opens.__dict__.get("installed"):

        def hook(event, args):
            if state["active"] is not None and event == "open" and args and isinstance(args[0], str | bytes):
                state["active"].append(str(args[0]))

        sys.addaudithook(hook)
        record_opens.installed = True
    state["active"] = seen
    try:
        yield seen
    finally:
        state["active"] = None


def test_hostile_svgs_rejected_without_reading_outside(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    cases = hostile_svgs(secret)
    with record_opens() as opened:
        for name, data in cases.items():
            start = time.perf_counter()
            with pytest.raises(SvgError):
                parse_svg_bytes(data, Limits())
            assert time.perf_counter() - start < 2.0, name
    assert not [p for p in opened if "secret" in p or "passwd" in p]


def test_hostile_files_skipped_and_reported(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    cases = hostile_svgs(secret)
    for name, data in cases.items():
        (src / f"{name}.svg").write_bytes(data)
    (src / "good.svg").write_bytes(_svg('<path d="M60 60 C100 20 160 200 200 100" stroke-width="3"/>'))
    (src / "link.svg").symlink_to("/etc/passwd")
    os.mkfifo(src / "fifo.svg")  # opening it would block forever
    (src / "nocaption.svg").write_bytes(_svg('<path d="M0 0 L9 9"/>'))
    captions = {p.stem: "a thing swaying" for p in src.glob("*.svg") if p.stem != "nocaption"}
    (src / "captions.json").write_text(json.dumps(captions))
    out = tmp_path / "out"
    with record_opens() as opened:
        report = generate(
            GenConfig(
                out=out, sketches=(src,), clips_per_sketch=1, frames=4, size=32, workers=1, progress=False
            )
        )
    assert not [p for p in opened if "secret" in p or "passwd" in p]
    reasons = {s["source"].rsplit("/", 1)[-1]: s["reason"] for s in report["skipped_sources"]}
    assert set(reasons) == {f"{n}.svg" for n in cases} | {"link.svg", "fifo.svg", "nocaption.svg"}
    assert "outside" in reasons["link.svg"] and "regular" in reasons["fifo.svg"]
    assert report["written"] == 1 and not report["failed_clips"]
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["source"].rsplit("/", 1)[-1] for r in rows] == ["good.svg"]
    for f in out.rglob("*"):
        if f.is_file():
            assert b"TOP-SECRET" not in f.read_bytes()


def test_read_svg_file_limits(tmp_path):
    big = tmp_path / "big.svg"
    big.write_bytes(_svg('<path d="M0 0 L9 9"/>') + b" " * 5000)
    with pytest.raises(SvgError, match="larger"):
        read_svg_file(big, Limits(max_file_bytes=1000))
    many = tmp_path / "many.svg"
    many.write_bytes(_svg('<path d="M0 0' + " L1 1" * 200 + '"/>'))
    with pytest.raises(SvgError, match="segments"):
        read_svg_file(many, Limits(max_segments=100))
    with pytest.raises(SvgError, match="cannot read"):
        read_svg_file(tmp_path / "missing.svg")
