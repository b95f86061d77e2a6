"""Benchmarks (items, captions, SVG rendering, checks) and the results table."""

import json
import math

import pytest
from PIL import Image

from flipsketch.errors import UserError
from flipsketch.evaluation.benchmark import load_benchmark
from flipsketch.evaluation.methods import Method
from flipsketch.evaluation.table import summarize, to_markdown, write_summary_csv
from tests.conftest import REPO, draw_sketch


def test_shipped_svgs_render_to_png_deterministically(tmp_path):
    spec = {
        "name": "shipped",
        "root": str(REPO / "data_gen" / "sketches"),
        "captions": "captions.json",
        "only": ["fish", "cat"],
        "raster_size": 128,
    }
    a = load_benchmark(spec, tmp_path / "a")
    b = load_benchmark(spec, tmp_path / "b")
    assert [i.id for i in a] == ["fish", "cat"] and a[0].prompt.startswith("a fish")
    assert Image.open(a[0].sketch).size == (128, 128) and a[0].sketch.parent == tmp_path / "a"
    assert [i.sha for i in a] == [i.sha for i in b]  # same bytes: resumed results stay valid
    assert len(load_benchmark({**spec, "only": None, "limit": 3}, tmp_path / "c")) == 3


def test_items_list_with_relative_paths_and_ids(tmp_path):
    draw_sketch(64).save(tmp_path / "ball.png")
    items = load_benchmark(
        {
            "name": "mine",
            "root": str(tmp_path),
            "items": [
                {"sketch": "ball.png", "prompt": "a  ball\nbouncing"},
                {"sketch": str(tmp_path / "ball.png"), "prompt": "a ball rolling", "id": "ball rolls"},
            ],
        },
        tmp_path / "render",
    )
    assert [(i.id, i.prompt) for i in items] == [
        ("ball", "a ball bouncing"),
        ("ball_rolls", "a ball rolling"),
    ]


@pytest.mark.parametrize(
    "items, needle",
    [
        ([{"sketch": "missing.png", "prompt": "x"}], "sketch not found"),
        ([{"sketch": "ball.png", "prompt": " "}], "has no prompt"),
        (
            [{"sketch": "ball.png", "prompt": "a"}, {"sketch": "ball.png", "prompt": "b"}],
            "two items are called 'ball'",
        ),
        ([{"sketch": "notes.png", "prompt": "a"}], "cannot read sketch"),
        ([{"prompt": "a"}], "needs a sketch"),
    ],
)
def test_bad_benchmarks_are_one_line(tmp_path, items, needle):
    draw_sketch(32).save(tmp_path / "ball.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UserError, match=needle) as e:
        load_benchmark({"name": "bad", "root": str(tmp_path), "items": items}, tmp_path / "r")
    assert "\n" not in str(e.value)


def test_captions_benchmark_checks_only_and_files(tmp_path):
    (tmp_path / "captions.json").write_text(json.dumps({"a.png": "x", "b": "y"}))
    draw_sketch(32).save(tmp_path / "a.png")
    with pytest.raises(UserError, match="sketch not found"):
        load_benchmark({"name": "c", "root": str(tmp_path), "captions": "captions.json"}, tmp_path / "r")
    assert [
        i.id
        for i in load_benchmark(
            {"name": "c", "root": str(tmp_path), "captions": "captions.json", "only": ["a"]}, tmp_path / "r"
        )
    ] == ["a"]
    with pytest.raises(UserError, match=r"no item\(s\) \['zebra'\]"):
        load_benchmark(
            {"name": "c", "root": str(tmp_path), "captions": "captions.json", "only": ["zebra"]}, tmp_path
        )
    with pytest.raises(UserError, match="folder not found"):
        load_benchmark({"name": "c", "root": str(tmp_path / "no"), "captions": "captions.json"}, tmp_path)


def test_shared_example_benchmarks_load(shared_data, tmp_path):
    ex = load_benchmark(
        {"name": "ex", "root": str(shared_data / "flipsketch_examples"), "captions": "prompts.json"}, tmp_path
    )
    assert len(ex) == 8 and {i.id for i in ex} >= {"sketch1", "sketch12"}
    ls = load_benchmark(
        {
            "name": "ls",
            "root": str(shared_data / "live_sketch_svg"),
            "captions": "captions.json",
            "limit": 3,
            "raster_size": 64,
        },
        tmp_path / "ls",
    )
    assert len(ls) == 3 and all(i.sketch.suffix == ".png" and i.source.suffix == ".svg" for i in ls)


def test_table_mean_std_over_items_and_seeds_names_the_backbone(tmp_path):
    methods = [
        Method("svd", "SVD", "baseline", {}, text_conditioned=False),
        Method("full", "FlipSketch", "variant", {}),
    ]
    rows = []
    for m, base in (("svd", 0.9), ("full", 0.95)):
        for k, item in enumerate(("a", "b")):
            rows.append(
                {
                    "method": m,
                    "item": item,
                    "seed": 0,
                    "s2v": base + 0.01 * k,
                    "t2v": 0.2,
                    "chamfer": 1.0,
                    "motion": 2.0,
                    "flicker": 0.1,
                    "frame0_iou": 0.5,
                    "seconds": 3.0,
                    "backbone": "bb",
                }
            )
    summary = summarize(rows, methods)
    assert [s["label"] for s in summary] == ["SVD", "FlipSketch"] and summary[1]["n"] == 2
    assert math.isclose(summary[1]["s2v_mean"], 0.955) and math.isclose(
        summary[1]["s2v_std"], 0.00707, rel_tol=1e-3
    )
    md = to_markdown(summary)
    lines = md.splitlines()
    assert lines[0].startswith("| Method | S2V ↑ (bb) | T2V ↑ (bb) | Chamfer")
    assert "| FlipSketch | 0.955 [0.950, 0.960] | 0.200 [0.200, 0.200] |" in md
    assert "0.200 [0.200, 0.200]†" in lines[2]  # SVD does not see the prompt
    # SVD against FlipSketch on the same two units: -0.05 each, so the interval is a point and excludes 0
    assert "| SVD | -0.050 [-0.050, -0.050] * | +0.000 [+0.000, +0.000] |" in md
    csv_text = write_summary_csv(tmp_path / "r.csv", summary).read_text().splitlines()
    assert csv_text[0].startswith("method,label,kind,n") and len(csv_text) == 3
    assert "s2v_lo" in csv_text[0] and "s2v_diff_lo" in csv_text[0]
