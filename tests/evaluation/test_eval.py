"""flipsketch-eval end to end on the tiny model and tiny CLIP: videos, metrics.json, tables, resume,
W&B offline, Hydra multirun, and one-line errors with exit code 2."""

import csv
import json
import sys

import pytest
from PIL import Image

from data_gen.svg_io import read_svg_file, to_svg
from flipsketch.evaluation import run_eval
from tests.conftest import REPO

FAST = [
    "experiment=tiny_ablation",
    "benchmark.only=[cat]",
    "seeds=[0]",
    "sampler.num_frames=3",
    "sampler.num_inference_steps=2",
    "sampler.tau1=1",
    "sampler.tau2=1",
    "sampler.align_iters=1",
]


def _live_sketch_outputs(root):
    sketch = read_svg_file(REPO / "data_gen" / "sketches" / "cat.svg")
    (root / "cat").mkdir(parents=True)
    for i in range(3):
        (root / "cat" / f"frame{i:03d}.svg").write_text(
            to_svg(sketch.with_points(sketch.points + [0.01 * i, 0]))
        )
    return root


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    overrides = [
        *FAST,
        "methods=[full,no_align,t2v_plain,live_sketch]",
        "logger=none",
        f"paths.log_dir={tmp}",
        f"baseline.live_sketch.outputs={_live_sketch_outputs(tmp / 'ls')}",
    ]
    return tmp, overrides, run_eval([*overrides, f"paths.output_dir={tmp / 'run1'}"])


def test_writes_videos_metrics_and_tables(tiny_run):
    tmp, _, out = tiny_run
    assert out["counts"] == {"generated": 4, "skipped": 0, "rescored": 0}
    folders = {r["method"]: r["folder"] for r in out["rows"]}
    assert folders["full"].startswith(str(tmp / "eval" / "samples" / "shipped" / "tiny" / "full-"))
    assert folders["full"].endswith("/cat/seed0") and "/baselines/live_sketch-" in folders["live_sketch"]
    for method, folder in folders.items():
        d = tmp / folder
        gif = Image.open(d / "animation.gif")
        assert (
            gif.n_frames == (3 if method != "live_sketch" else 3) and (d / "animation.mp4").stat().st_size > 0
        )
        assert len(list((d / "frames").glob("*.png"))) == gif.n_frames
        m = json.loads((d / "metrics.json").read_text())
        assert {"s2v", "t2v", "chamfer", "motion", "flicker", "frame0_iou", "backbone", "seconds"} <= set(m)
        assert m["backbone"] == "open_clip:tiny-random(seed=0)" and m["method"] == method and m["seed"] == 0
        assert m["t2v_scorer"] == "xclip:tiny-random(seed=0)" and m["frames_scored"] == 3
        assert m["policy"] == {
            "postprocess": "binarize",
            "frames": 3,
            "include_frame0": False,
            "binarize_upscale": 1,
        }
        meta = json.loads((d / "meta.json").read_text())
        assert meta["settings"]["kind"] in ("variant", "baseline")
        if method in ("full", "no_align"):  # the tau and dtype actually used
            assert meta["tau"] == {"tau1": 1, "tau2": 1} and meta["dtype"] == "float32"
    run = tmp / "run1"
    md = (run / "results.md").read_text()
    assert md.startswith(out["table"]) and "open_clip:tiny-random(seed=0)" in md.splitlines()[0]
    assert "| T2V ↑ (xclip:tiny-random(seed=0)) |" in md  # the scorer beside the numbers
    assert (
        "metrics.postprocess=binarize, metrics.frames=3, metrics.include_frame0=false" in md.splitlines()[1]
    )
    assert "![cat](contact_sheets/cat.png)" in md and out["contact_sheets"] == {
        "cat": str(run / "contact_sheets" / "cat.png")
    }
    sheet = Image.open(run / "contact_sheets" / "cat.png")
    side = 128  # 64 px frames drawn at 2x; the sketch then 3 frames; a title line then 4 method rows
    assert sheet.size == (150 + 4 * (side + 2), 14 + 4 * (side + 2))
    main, paired = md.split("Paired difference from FlipSketch (full)")
    rows = [line.split(" | ")[0] for line in main.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == [
        "| Method",
        "| FlipSketch",
        "| w/o frame alignment",
        "| Text-to-video (no sketch)",
        "| Live-Sketch",
    ]
    # one unit (cat, seed 0) per method: every interval is that unit, every paired difference on n = 1
    assert "| FlipSketch | " in main and " [" in main.split("| FlipSketch | ")[1].split(" | ")[0]
    assert [line.rsplit(" | ", 1)[-1] for line in paired.splitlines() if line.startswith("| w/o")] == ["1 |"]
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["backbone"] == "open_clip:tiny-random(seed=0)" and saved["stats"]["bootstrap"] == 2000
    assert saved["differences"]["t2v_plain/s2v"]["reference"] == "full"
    assert saved["differences"]["t2v_plain/s2v"]["n"] == 1 and len(saved["intervals"]["full/s2v"]) == 2
    with open(run / "results.csv") as fh:
        summary = list(csv.DictReader(fh))
    assert [r["method"] for r in summary] == ["full", "no_align", "t2v_plain", "live_sketch"]
    assert all(r["n"] == "1" and float(r["s2v_mean"]) > 0 for r in summary)
    assert len((run / "items.csv").read_text().splitlines()) == 5
    assert (run / "benchmark" / "cat.png").is_file()  # the shipped SVG rendered into the run folder


def test_rerun_skips_finished_items_and_rescoring_reuses_videos(tiny_run):
    tmp, overrides, first = tiny_run
    stamp = {r["method"]: (tmp / r["folder"] / "metrics.json").stat().st_mtime_ns for r in first["rows"]}
    again = run_eval([*overrides, f"paths.output_dir={tmp / 'run2'}"])
    assert again["counts"] == {"generated": 0, "skipped": 4, "rescored": 0}
    assert {
        r["method"]: (tmp / r["folder"] / "metrics.json").stat().st_mtime_ns for r in again["rows"]
    } == stamp
    assert [s["s2v_mean"] for s in again["summary"]] == [s["s2v_mean"] for s in first["summary"]]
    gif = tmp / first["rows"][0]["folder"] / "animation.gif"
    before = gif.stat().st_mtime_ns
    other = run_eval([*overrides, "metrics.scorer.seed=1", f"paths.output_dir={tmp / 'run3'}"])
    assert (
        other["counts"] == {"generated": 0, "skipped": 0, "rescored": 4} and gif.stat().st_mtime_ns == before
    )
    assert other["backbone"] == "open_clip:tiny-random(seed=1)"
    grey = run_eval([*overrides, "metrics.postprocess=grey", f"paths.output_dir={tmp / 'run4'}"])
    assert grey["counts"] == {"generated": 0, "skipped": 0, "rescored": 4}  # a new policy rescores
    assert grey["policy"]["postprocess"] == "grey" and "grey levels" in grey["table"]


def test_wandb_offline_run_is_created_and_finished(tiny_run, monkeypatch):
    import wandb

    tmp, overrides, _ = tiny_run
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp / "wandb_env"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp / "wandb_data"))  # staged table media
    out = run_eval(
        [*[o for o in overrides if o != "logger=none"], "logger=wandb", f"paths.output_dir={tmp / 'wb'}"]
    )
    assert out["counts"]["generated"] == 0  # resumed: nothing sampled again
    runs = list((tmp / "wb" / "wandb").glob("offline-run-*"))  # with the run, whatever WANDB_DIR says
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    assert len(list(runs[0].glob("files/media/videos/videos/*.gif"))) == 4  # one clip per method
    assert len(list(runs[0].glob("files/media/images/contact_sheets/*.png"))) == 1  # one per item
    assert list(runs[0].glob("files/media/table/eval/items_*.table.json"))
    assert wandb.run is None  # finished


def _cli(monkeypatch, capsys, args):
    from flipsketch.eval import main

    monkeypatch.setattr(sys, "argv", ["flipsketch-eval", *args])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    return e.value.code, err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["methods=[full,nonexistent]"], "unknown method 'nonexistent'"),
        (
            ["benchmark.only=null", "benchmark.items=[{sketch: /nonexistent/sketch.png, prompt: a cat}]"],
            "sketch not found",
        ),
        (["seeds=[]"], "seeds must be"),
        (["nonsense=1"], "bad configuration"),
        (["benchmark=nonexistent"], "bad configuration"),
        (["sampler.lambda_=3"], "lambda_"),
        (["metrics.postprocess=blur"], "metrics.postprocess must be one of binarize, grey"),
        (["metrics.t2v=vclip"], "metrics.t2v must be one of xclip, clip"),
        (
            [
                "metrics.xclip._target_=flipsketch.metrics.XClipScorer",
                "~metrics.xclip.seed",
                "+metrics.xclip.pretrained=/nonexistent/xclip",
            ],
            "X-CLIP folder not found",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, needle):
    code, err = _cli(
        monkeypatch,
        capsys,
        [*FAST, "logger=none", f"paths.log_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}", *args],
    )
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and needle in err[0], err
    assert not (tmp_path / "eval" / "samples").exists()


def test_multirun_sweep_closes_one_wandb_run_per_job(tmp_path, monkeypatch, capsys):
    from flipsketch.eval import main

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "flipsketch-eval",
            "-m",
            *FAST,
            "methods=[full]",
            "sampler.lambda_=0,1",
            "logger=wandb",
            f"paths.log_dir={tmp_path}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
    )
    main()
    for job in ("0", "1"):
        assert (tmp_path / "sweep" / job / "results.md").is_file()
        assert len(list((tmp_path / "sweep" / job / "wandb").glob("offline-run-*"))) == 1
    lams = [
        json.loads(p.read_text())["sampler"]["lambda_"]
        for p in (tmp_path / "eval" / "samples" / "shipped" / "tiny").glob("full-*/settings.json")
    ]
    assert sorted(lams) == [0.0, 1.0]  # one output folder per setting
    assert "sweep job 1: " in (tmp_path / "sweep" / "1" / "results.md").read_text()  # says which job
    combined = (tmp_path / "sweep" / "results.md").read_text()  # one table over the jobs
    assert "| job | sampler.lambda_ | full/s2v (CLIP open_clip:tiny-random(seed=0); binarize 1x" in combined
    assert (
        "Best job: " in combined or "No clear best: " in combined
    ) and "Scoring: every method scored alike" in combined
    assert "percentile bootstrap interval" in combined and " [" in combined.split("| 0 |")[1].split("\n")[0]
    assert "full/s2v" in (tmp_path / "sweep" / "results.csv").read_text().splitlines()[0]
    assert (tmp_path / "sweep" / "tradeoff.png").is_file() and "![trade-off](tradeoff.png)" in combined
    assert "Combined table:" in capsys.readouterr().out
    import wandb

    assert wandb.run is None


def test_cache_key_follows_the_weight_files_not_only_the_config(tmp_path):
    """Retraining a LoRA to the same path must not reuse old videos: its content is in the key."""
    from omegaconf import OmegaConf

    from flipsketch import __version__
    from flipsketch.evaluation.methods import model_settings

    lora = tmp_path / "lora" / "pytorch_lora_weights.safetensors"
    lora.parent.mkdir()
    lora.write_bytes(b"a" * 3_000_000)
    cfg = OmegaConf.create({"model": {"name": "tiny", "lora": str(lora.parent)}, "dtype": "auto"})
    first = model_settings(cfg)
    assert list(first["weights"]) == [str(lora.resolve())] and first["flipsketch_version"] == __version__
    assert model_settings(cfg) == first, "deterministic"
    lora.write_bytes(b"a" * 1_500_000 + b"b" + b"a" * 1_499_999)  # same size, one byte in the middle
    assert model_settings(cfg)["weights"] != first["weights"]
    shipped = model_settings(OmegaConf.create({"model": {"name": "tiny_pretrained", "path": None}}))
    assert any(k.endswith("diffusion_pytorch_model.safetensors") for k in shipped["weights"])


def test_reuse_sketch_and_batch_seeds_keep_the_metrics(tmp_path):
    """reuse_sketch (inversion, prompts, reference stream once per sketch) gives bit-identical videos
    and identical metrics; batch_seeds=2 samples both seeds in one call (float32 rounding aside)."""
    from pathlib import Path

    import numpy as np

    base = [*FAST, "seeds=[0,1]", "methods=[full]", "logger=none", f"paths.log_dir={tmp_path}"]
    runs = {}
    for name, extra in {"fresh": ["reuse_sketch=false"], "reuse": [], "batched": ["batch_seeds=2"]}.items():
        runs[name] = run_eval(
            [
                *base,
                *extra,
                f"samples_dir={tmp_path / name}",
                f"paths.output_dir={tmp_path / ('run-' + name)}",
            ]
        )

    def metrics(res):
        return [{k: r[k] for k in ("method", "seed", "s2v", "t2v", "chamfer", "motion")} for r in res["rows"]]

    def frames(row):
        folder = Path(row["folder"]) / "frames"
        return [np.asarray(Image.open(p)) for p in sorted(folder.iterdir())]

    assert metrics(runs["reuse"]) == metrics(runs["fresh"])  # identical, not close
    for a, b in zip(runs["fresh"]["rows"], runs["reuse"]["rows"], strict=True):
        fa, fb = frames(a), frames(b)
        assert len(fa) == len(fb) > 0 and all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    assert [r["status"] for r in runs["batched"]["rows"]] == ["generated"] * 2
    for a, b in zip(metrics(runs["fresh"]), metrics(runs["batched"]), strict=True):
        assert (a["method"], a["seed"]) == (b["method"], b["seed"])
        assert abs(a["s2v"] - b["s2v"]) < 1e-2 and abs(a["t2v"] - b["t2v"]) < 1e-2
