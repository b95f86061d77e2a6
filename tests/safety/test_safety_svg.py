"""SVG values that escape the checks (issue 25, item 5): a stroke-width of 1e308, a scale that
overflows, or a drawing that renders blank is refused in data_gen, never an all-white training clip,
and no numpy overflow warning reaches stderr."""

import warnings

import numpy as np
import pytest

from data_gen.svg_io import SvgError, parse_svg_bytes


def _svg(body: str, size: int = 100) -> bytes:
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}">{body}</svg>'.encode()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (
            '<path d="M10 10 L90 90" stroke="black" stroke-width="1e308"/>',
            "stroke-width 1e\\+308 out of range",
        ),
        ('<path d="M10 10 L90 90" stroke="black" stroke-width="500"/>', "wider than the canvas"),
        ('<path d="M10 10 L90 90" stroke="black" transform="scale(1e200)"/>', "out of range"),
        (
            '<g transform="scale(1e160)"><path d="M1 1 L2 2" stroke="black" transform="scale(1e160)"/></g>',
            "range",
        ),
    ],
)
def test_overflowing_numbers_are_refused_without_a_warning(body, why):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would fail here
        with pytest.raises(SvgError, match=why):
            parse_svg_bytes(_svg(body))


def test_a_normal_stroke_width_still_parses():
    sk = parse_svg_bytes(_svg('<path d="M10 10 L90 90" stroke="black" stroke-width="3"/>'))
    assert np.allclose(sk.widths, 0.03)


def _run(tmp_path, svgs: dict[str, str], capfd):
    from data_gen.__main__ import main

    src = tmp_path / "svgs"
    src.mkdir()
    for name, body in svgs.items():
        (src / f"{name}.svg").write_bytes(_svg(body))
    out = tmp_path / "out"
    try:
        rc = main(
            [f"out={out}", f"sketches=[{src}]", "size=32", "frames=4", "clips_per_sketch=1", "workers=1",
             "progress=false", f"hydra.run.dir={tmp_path / 'run'}"]
        )  # fmt: skip
    except SystemExit as exc:
        rc = exc.code
    return rc, out, capfd.readouterr().err


def test_data_gen_skips_the_huge_stroke_and_writes_no_blank_clip(tmp_path, capfd):
    rc, out, err = _run(
        tmp_path,
        {
            "huge": '<path d="M10 10 L90 90" stroke="black" stroke-width="1e308"/>',
            "ok": '<path d="M10 10 L90 90" stroke="black" stroke-width="3"/>',
        },
        capfd,
    )
    assert rc == 0
    assert "RuntimeWarning" not in err and "overflow" not in err
    assert "skipped" in err and "huge.svg" in err
    clips = sorted((out / "clips").glob("*.npy"))
    assert [p.stem for p in clips] == ["svgs-ok-00"]
    for p in clips:
        assert (np.load(p) < 255).any()  # ink in every clip written


def _blank_for(monkeypatch, stem: str):
    """Render the source named `stem` as paper only (what an overflowing width used to give)."""
    from data_gen import build

    real = build._frames_for

    def frames(task, spec, loaded):
        clip = real(task, spec, loaded)
        return np.full_like(clip, 255) if task.source.path.stem == stem else clip

    monkeypatch.setattr(build, "_frames_for", frames)


def test_a_clip_that_renders_blank_is_refused_not_written(tmp_path, capfd, monkeypatch):
    _blank_for(monkeypatch, "blank")
    line = '<path d="M10 10 L90 90" stroke="black" stroke-width="3"/>'
    rc, out, err = _run(tmp_path, {"blank": line, "ok": line}, capfd)
    assert rc == 0
    assert "blank.svg: renders as a blank white clip" in err
    assert [p.stem for p in (out / "clips").glob("*.npy")] == ["svgs-ok-00"]


def test_only_blank_inputs_is_one_error_line(tmp_path, capfd, monkeypatch):
    _blank_for(monkeypatch, "blank")
    rc, out, err = _run(tmp_path, {"blank": '<path d="M10 10 L90 90" stroke="black"/>'}, capfd)
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "blank" in lines[0]
    assert not (out / "clips").exists() or not any((out / "clips").iterdir())
