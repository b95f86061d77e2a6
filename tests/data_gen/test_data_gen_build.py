"""data_gen: dataset building, resume after a killed run, reader API, Live-Sketch inputs, CLI."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from data_gen import dataset
from data_gen.build import HELDOUT_SKETCHES, SHIPPED_SKETCHES, GenConfig, assign_splits, generate
from data_gen.motion import animate
from data_gen.sources import AnimationInput
from data_gen.svg_io import read_svg_file, to_svg
from flipsketch.errors import UserError

REPO = Path(__file__).resolve().parents[2]
SMALL = dict(frames=6, size=48, clips_per_sketch=2, progress=False, exclude=())  # fixture uses held-out ones


@pytest.fixture
def sketches(tmp_path) -> Path:
    """Four shipped sketches in a folder of their own."""
    src = tmp_path / "sketches"
    src.mkdir()
    captions = json.loads((SHIPPED_SKETCHES / "captions.json").read_text())
    names = ["fish", "bird", "tree", "star"]
    for n in names:
        shutil.copy(SHIPPED_SKETCHES / f"{n}.svg", src)
    (src / "captions.json").write_text(json.dumps({n: captions[n] for n in names}))
    return src


def _mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "clips").iterdir()}


def test_builds_dataset_and_reader_reads_it(sketches, tmp_path):
    out = tmp_path / "out"
    report = generate(GenConfig(out=out, sketches=(sketches,), workers=1, val_fraction=0.25, **SMALL))
    assert report["written"] == 8 and report["clips"] == 8 and not report["skipped_sources"]
    rows = dataset.read_metadata(out)
    assert len(rows) == 8
    for r in rows:
        assert {"clip", "caption", "source", "motion", "seed", "frames", "size", "split"} <= set(r)
        clip = dataset.load_clip(out, r)
        assert clip.dtype == np.uint8 and clip.shape == (6, 48, 48)
        assert clip.min() < 100 and clip.max() == 255
    by_source = {}
    for r in rows:
        by_source.setdefault(r["source"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_source.values()), "clips of one sketch share a split"
    assert sum(r["split"] == "val" for r in rows) == 2  # one of four sketches
    assert {r["motion"] for r in rows} == {"swim", "fly", "sway", "spin"}
    assert dataset.load_clip(out, rows[0], mmap=True).shape == (6, 48, 48)
    assert len(dataset.read_metadata(out, split="val")) == 2
    with pytest.raises(ValueError):
        dataset.load_clip(out, {"clip": "../outside.npy"})


def test_same_seed_same_bytes_across_worker_counts(sketches, tmp_path):
    a = generate(GenConfig(out=tmp_path / "a", sketches=(sketches,), workers=1, seed=3, **SMALL))
    b = generate(GenConfig(out=tmp_path / "b", sketches=(sketches,), workers=2, seed=3, **SMALL))
    c = generate(GenConfig(out=tmp_path / "c", sketches=(sketches,), workers=1, seed=4, **SMALL))
    assert a["written"] == b["written"] == c["written"] == 8
    for p in sorted((tmp_path / "a" / "clips").glob("*.npy")):
        assert p.read_bytes() == (tmp_path / "b" / "clips" / p.name).read_bytes()
    assert (tmp_path / "a" / "metadata.jsonl").read_text() == (tmp_path / "b" / "metadata.jsonl").read_text()
    diff = [
        p.name
        for p in (tmp_path / "a" / "clips").glob("*.npy")
        if p.read_bytes() != (tmp_path / "c" / "clips" / p.name).read_bytes()
    ]
    assert diff, "another seed gives other clips"


def test_split_is_deterministic_and_exact():
    keys = [f"k{i}" for i in range(20)]
    s1, s2 = assign_splits(keys, 0, 0.1), assign_splits(list(reversed(keys)), 0, 0.1)
    assert s1 == s2 and sum(v == "val" for v in s1.values()) == 2
    assert assign_splits(keys, 1, 0.1) != s1
    assert set(assign_splits(keys, 0, 0.0).values()) == {"train"}


def test_interrupted_run_resumes(sketches, tmp_path):
    out = tmp_path / "out"
    cfg = GenConfig(out=out, sketches=(sketches,), workers=1, **SMALL)
    generate(cfg)
    meta_before = (out / "metadata.jsonl").read_text()
    clips = out / "clips"
    (clips / "sketches-fish-01.npy").unlink()  # a clip lost with its sidecar still there
    (clips / "sketches-tree-00.json").unlink()  # killed between writing the .npy and its sidecar
    (clips / ".sketches-bird-00.npy.tmp-999-deadbeef").write_bytes(b"half a clip")
    (out / "metadata.jsonl").unlink()
    before = _mtimes(out)
    time.sleep(0.01)
    report = generate(cfg)
    assert report["written"] == 2 and report["existing"] == 6 and report["temp_files_removed"] == 1
    after = _mtimes(out)
    assert not [n for n in after if ".tmp-" in n]
    rebuilt = {
        "sketches-fish-01.npy",
        "sketches-fish-01.json",
        "sketches-tree-00.npy",
        "sketches-tree-00.json",
    }
    for name, mtime in before.items():
        if name not in rebuilt and ".tmp-" not in name:
            assert after[name] == mtime, f"{name} was rewritten"
    assert rebuilt <= set(after)
    assert (out / "metadata.jsonl").read_text() == meta_before


def test_changed_settings_rebuild_and_metadata_rebuilds_from_sidecars(sketches, tmp_path):
    out = tmp_path / "out"
    generate(GenConfig(out=out, sketches=(sketches,), workers=1, **SMALL))
    report = generate(GenConfig(out=out, sketches=(sketches,), workers=1, **{**SMALL, "size": 32}))
    assert report["written"] == 8
    assert dataset.load_clip(out, dataset.read_metadata(out)[0]).shape == (6, 32, 32)
    (out / "metadata.jsonl").unlink()
    rows = dataset.read_metadata(out)  # falls back to the sidecars
    assert len(rows) == 8 and all(r["size"] == 32 for r in rows)
    dataset.rebuild_metadata(out)
    assert len((out / "metadata.jsonl").read_text().splitlines()) == 8


def test_folder_without_captions_uses_file_names_and_prints_each_skip(tmp_path, capsys):
    src = tmp_path / "mine"
    src.mkdir()
    shutil.copy(SHIPPED_SKETCHES / "fish.svg", src / "a_fish-swimming.svg")
    (src / "broken.svg").write_text("<svg")
    (src / "empty.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>')
    out = tmp_path / "out"
    report = generate(GenConfig(out=out, sketches=(src,), workers=1, **SMALL))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"warning: no captions.json in {src}: using the file names as captions"
    assert [line.split(": ")[1].rsplit("/", 1)[-1] for line in err[1:]] == ["broken.svg", "empty.svg"]
    assert all(line.startswith("warning: skipped ") for line in err[1:])
    assert report["clips"] == 2 and len(report["skipped_sources"]) == 2
    assert {r["caption"] for r in dataset.read_metadata(out)} == {"a fish swimming"}


def test_every_source_unusable_is_an_error_that_lists_why(tmp_path):
    src = tmp_path / "bad"
    src.mkdir()
    (src / "a.svg").write_text("<svg")
    (src / "b.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><image href="/etc/passwd"/></svg>')
    (src / "captions.json").write_text(json.dumps({"a": "a cat", "b": "a dog"}))
    with pytest.raises(
        UserError, match=r"no usable inputs: 2 skipped \(a.svg: not well-formed.*b.svg: <image>"
    ):
        generate(GenConfig(out=tmp_path / "out", sketches=(src,), workers=1, **SMALL))
    assert not (tmp_path / "out").exists()


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent (now init) may reap it


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_process_leaves_only_whole_clips_and_no_workers(sketches, tmp_path):
    """SIGKILL of the data_gen parent alone: its workers die with it, and a rerun resumes."""
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "data_gen",
        f"out={out}",
        f"sketches=[{sketches}]",
        "clips_per_sketch=40",
        "size=128",
        "frames=24",
        "workers=2",
        "progress=false",
        "exclude=[]",  # the fixture's sketches include held-out ones
        f"hydra.run.dir={tmp_path / 'logs'}",
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(list((out / "clips").glob("*.json"))) < 10:
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert len(workers) == 2, "the pool's workers are running"
        proc.send_signal(signal.SIGKILL)  # the parent only, as the OOM killer or `kill -9 PID` would
        proc.wait()
        deadline = time.time() + 15
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.05)
        assert not [w for w in workers if _alive(w)], "workers outlived their parent"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # our own session, should the test fail half-way
    for npy in (out / "clips").glob("*.npy"):
        assert np.load(npy).shape == (24, 128, 128)  # every clip under its real name is whole
    report = generate(
        GenConfig(
            out=out,
            sketches=(sketches,),
            clips_per_sketch=40,
            size=128,
            frames=24,
            workers=2,
            progress=False,
            exclude=(),
        )
    )
    assert report["clips"] == 160 and not report["failed_clips"]
    assert report["existing"] >= 10 and report["written"] > 0, "killed mid-run, finished on rerun"
    assert not [p for p in (out / "clips").iterdir() if ".tmp-" in p.name]


def _fake_live_sketch_run(run: Path, caption: str | None) -> None:
    sk = read_svg_file(SHIPPED_SKETCHES / "fish.svg")
    for step, seed in (("svg_step0", 1), ("svg_step1000", 2)):
        folder = run / "svg_logs" / step
        folder.mkdir(parents=True)
        for i, pts in enumerate(animate(sk, "swim", 12, seed)):
            (folder / f"frame{i:03d}.svg").write_text(to_svg(sk.with_points(pts)))
    if caption:
        (run / "caption.txt").write_text(caption)


def test_live_sketch_output_folders(tmp_path):
    runs = tmp_path / "live"
    _fake_live_sketch_run(runs / "fish_run", "a fish swimming")
    _fake_live_sketch_run(runs / "nocap_run", None)
    out = tmp_path / "out"
    report = generate(
        GenConfig(
            out=out,
            sketches=(),
            animations=(AnimationInput(runs),),
            frames=8,
            size=64,
            workers=1,
            progress=False,
        )
    )
    assert report["written"] == 1
    assert [s["reason"] for s in report["skipped_sources"]] == [
        "no caption (give {path, caption} or a caption.txt)"
    ]
    (row,) = dataset.read_metadata(out)
    assert row["source"].endswith("svg_step1000") and row["source_frames"] == 12 and row["frames"] == 8
    assert row["motion"] == "live_sketch" and row["caption"] == "a fish swimming"
    clip = dataset.load_clip(out, row)
    assert clip.shape == (8, 64, 64) and len({f.tobytes() for f in clip}) > 4
    # a single run folder with the caption given in the config
    out2 = tmp_path / "out2"
    generate(
        GenConfig(
            out=out2,
            sketches=(),
            animations=(AnimationInput(runs / "nocap_run", "a fish"),),
            frames=8,
            size=64,
            workers=1,
            progress=False,
        )
    )
    assert dataset.read_metadata(out2)[0]["caption"] == "a fish"


def test_user_errors(tmp_path, sketches):
    with pytest.raises(UserError, match="not found"):
        generate(GenConfig(out=tmp_path / "o", sketches=(tmp_path / "missing",)))
    with pytest.raises(UserError, match="no .svg sketches"):
        generate(GenConfig(out=tmp_path / "o", sketches=(tmp_path,)))
    assert not (tmp_path / "o").exists()  # refused before anything is written
    with pytest.raises(UserError, match="motion"):
        generate(GenConfig(out=tmp_path / "o", sketches=(sketches,), motion="teleport"))
    with pytest.raises(UserError, match="Live-Sketch"):
        generate(GenConfig(out=tmp_path / "o", sketches=(), animations=(AnimationInput(sketches),)))


def _cli(tmp_path, *args):
    return subprocess.run(
        [sys.executable, "-m", "data_gen", *args, f"hydra.run.dir={tmp_path / 'logs'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    res = _cli(tmp_path, f"out={tmp_path / 'o'}", f"sketches=[{tmp_path / 'nope'}]")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("error: sketch folder not found")
    res = _cli(tmp_path)
    assert res.returncode == 2 and res.stderr.strip() == "error: no output folder: pass out=DIR"


def test_cli_builds_the_shipped_set(tmp_path):
    res = _cli(
        tmp_path, f"out={tmp_path / 'o'}", "size=32", "frames=4", "clips_per_sketch=1", "progress=false"
    )
    assert res.returncode == 0, res.stderr
    rows = dataset.read_metadata(tmp_path / "o")
    # by default the held-out evaluation sketches are left out (benchmark=shipped scores exactly those)
    assert len(rows) == len(list(SHIPPED_SKETCHES.glob("*.svg"))) - len(HELDOUT_SKETCHES) >= 12
    assert not {Path(r["source"]).stem for r in rows} & set(HELDOUT_SKETCHES)
    assert all(len(r["source_sha256"]) == 64 for r in rows)
    assert json.loads((tmp_path / "o" / "report.json").read_text())["clips"] == len(rows)
    assert "clips in" in res.stdout


def test_heldout_sketches_are_left_out_by_content_wherever_they_are(tmp_path):
    """A renamed copy of a held-out sketch is still left out; exclude=[] keeps everything."""
    src = tmp_path / "mine"
    src.mkdir()
    shutil.copy(SHIPPED_SKETCHES / "cat.svg", src / "kitty.svg")  # same bytes, another name
    shutil.copy(SHIPPED_SKETCHES / "tree.svg", src / "tree.svg")
    (src / "fish.svg").write_text((SHIPPED_SKETCHES / "fish.svg").read_text() + "\n")  # edited: not held out
    (src / "captions.json").write_text(json.dumps({"kitty": "a cat", "tree": "a tree", "fish": "a fish"}))
    tiny = dict(frames=2, size=16, clips_per_sketch=1, progress=False, workers=1)

    generate(GenConfig(out=tmp_path / "a", sketches=(src,), **tiny))  # default exclude: heldout
    assert sorted(Path(r["source"]).stem for r in dataset.read_metadata(tmp_path / "a")) == ["fish", "tree"]
    generate(GenConfig(out=tmp_path / "b", sketches=(src,), exclude=(), **tiny))
    assert len(dataset.read_metadata(tmp_path / "b")) == 3
    generate(GenConfig(out=tmp_path / "c", sketches=(src,), exclude=("tree",), **tiny))  # names only
    assert sorted(Path(r["source"]).stem for r in dataset.read_metadata(tmp_path / "c")) == ["fish", "kitty"]
