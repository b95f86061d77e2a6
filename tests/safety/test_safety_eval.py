"""Evaluation does not trust its cache blindly (issue 25, item 9): a content hash of every sample
file is recorded in metrics.json when the sample is written; a truncated or replaced file fails the
check on reuse and the sample is regenerated, and a killed run's hidden temp folders are removed."""

import json
import subprocess
import sys

import imageio.v2 as imageio
import pytest
from PIL import Image

from flipsketch.evaluation import run_eval
from tests.evaluation.test_eval import FAST as EVAL_FAST

FAST = [*EVAL_FAST, "methods=[full]", "logger=none"]  # the eval tests' shortest run, one method


def _sample(folder):
    import numpy as np

    from flipsketch.outputs import write_animation

    frames = np.full((3, 32, 32), 255, np.uint8)
    frames[:, 10:20, 10:20] = 0
    write_animation(folder, frames, {"seed": 0}, 10, ("gif", "mp4", "png"))
    return folder


def test_the_content_check_catches_truncation_garbage_and_missing_files(tmp_path):
    """Fast, without a model: what `Evaluator._intact` accepts and refuses."""
    from types import SimpleNamespace

    from flipsketch.atomic import folder_digest
    from flipsketch.evaluation.evaluator import Evaluator

    folder = _sample(tmp_path / "seed0")
    ev = SimpleNamespace(formats=("gif", "mp4", "png"))
    done = {"files_sha256": folder_digest(folder)}
    assert Evaluator._intact(ev, folder, done)
    assert not Evaluator._intact(ev, folder, {})  # an older cache without hashes: regenerated
    mp4 = folder / "animation.mp4"
    whole = mp4.read_bytes()
    mp4.write_bytes(whole[:100])
    assert not Evaluator._intact(ev, folder, done)
    mp4.write_bytes(whole)
    (folder / "animation.gif").write_bytes(b"GIF89a" + b"\0" * 50)
    assert not Evaluator._intact(ev, folder, done)
    done = {"files_sha256": folder_digest(folder)}
    (folder / "animation.gif").unlink()
    assert not Evaluator._intact(ev, folder, done)
    partial = {k: v for k, v in done.items()}
    partial["files_sha256"] = {k: v for k, v in done["files_sha256"].items() if k != "animation.mp4"}
    assert not Evaluator._intact(ev, folder, partial)  # a requested format never recorded


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval_cache")
    overrides = [*FAST, f"paths.log_dir={tmp}"]
    first = run_eval([*overrides, f"paths.output_dir={tmp / 'run1'}"])
    assert first["counts"]["generated"] == 1
    return tmp, overrides, tmp / first["rows"][0]["folder"]


def _again(tmp, overrides, name):
    return run_eval([*overrides, f"paths.output_dir={tmp / name}"])


@pytest.mark.slow
def test_hashes_are_recorded_and_an_intact_cache_is_skipped(cached):
    tmp, overrides, folder = cached
    rec = json.loads((folder / "metrics.json").read_text())
    assert {"animation.gif", "animation.mp4", "meta.json", "frames/000.png"} <= set(rec["files_sha256"])
    assert _again(tmp, overrides, "intact")["counts"] == {"generated": 0, "skipped": 1, "rescored": 0}


@pytest.mark.slow
def test_a_truncated_mp4_is_regenerated(cached):
    tmp, overrides, folder = cached
    mp4 = folder / "animation.mp4"
    mp4.write_bytes(mp4.read_bytes()[:100])
    again = _again(tmp, overrides, "truncated")
    assert again["counts"]["generated"] == 1 and again["rows"][0]["status"] == "generated"
    assert len(imageio.mimread(mp4)) == 3  # a whole video again


@pytest.mark.slow
def test_a_garbage_gif_is_regenerated(cached):
    tmp, overrides, folder = cached
    gif = folder / "animation.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 50)
    again = _again(tmp, overrides, "garbage")
    assert again["counts"]["generated"] == 1
    with Image.open(gif) as im:
        assert im.n_frames == 3


@pytest.mark.slow
def test_a_replaced_frame_is_not_rescored_from(cached):
    """A policy change rescores from the saved PNG frames: only frames that pass the check."""
    tmp, overrides, folder = cached
    png = folder / "frames" / "001.png"
    Image.new("L", Image.open(png).size, 255).save(png)
    again = run_eval([*overrides, "metrics.postprocess=grey", f"paths.output_dir={tmp / 'frames'}"])
    assert again["counts"] == {"generated": 1, "skipped": 0, "rescored": 0}


@pytest.mark.slow
def test_a_killed_runs_hidden_temp_folders_are_removed(cached):
    tmp, overrides, folder = cached
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)  # that process has exited
    stale_dir = folder.parent / f".{folder.name}.tmp-{pid}-deadbeef"
    stale_dir.mkdir()
    (stale_dir / "animation.gif").write_bytes(b"half")
    stale_file = folder / f".metrics.json.tmp-{pid}-cafef00d"
    stale_file.write_text("{")
    _again(tmp, overrides, "stale")
    assert not stale_dir.exists() and not stale_file.exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_a_live_writers_temp_folder_is_left_alone(tmp_path):
    import os

    from flipsketch.atomic import clean_stale_temps

    mine = tmp_path / f".seed0.tmp-{os.getppid()}-00000000"  # a running process (our parent)
    mine.mkdir()
    assert clean_stale_temps(tmp_path) == [] and mine.is_dir()


def test_a_dead_writers_temp_folder_and_file_are_removed(tmp_path):
    from flipsketch.atomic import clean_stale_temps

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    (tmp_path / f".seed0.tmp-{pid}-deadbeef").mkdir()
    (tmp_path / f".metrics.json.tmp-{pid}-cafef00d").write_text("{")
    (tmp_path / "seed1").mkdir()
    assert len(clean_stale_temps(tmp_path)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["seed1"]
