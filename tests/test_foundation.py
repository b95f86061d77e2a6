"""The foundation's shared helpers: atomic writes, the seeds check, the captions reader, the W&B mode."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from flipsketch import atomic
from flipsketch.checks import as_seeds
from flipsketch.errors import UserError


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_writes_land_whole_and_leave_no_temp_files(tmp_path):
    atomic.write_text(tmp_path / "a.txt", "héllo\n")
    atomic.save_npy(tmp_path / "b.npy", np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert (tmp_path / "a.txt").read_bytes() == "héllo\n".encode()
    assert np.array_equal(np.load(tmp_path / "b.npy"), np.arange(6, dtype=np.uint8).reshape(2, 3))
    with atomic.atomic_path(tmp_path / "c.bin") as tmp:
        assert tmp.parent == tmp_path and atomic.is_temp_file(tmp)
        tmp.write_bytes(b"xyz")
        assert not (tmp_path / "c.bin").exists(), "the real name appears only at the end"
    assert (tmp_path / "c.bin").read_bytes() == b"xyz"
    assert _names(tmp_path) == ["a.txt", "b.npy", "c.bin"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path):
    (tmp_path / "state.json").write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_path(tmp_path / "state.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert (tmp_path / "state.json").read_text() == "old"
    assert _names(tmp_path) == ["state.json"]


def test_atomic_paths_replace_together_or_not_at_all(tmp_path):
    for n in ("w", "p"):
        (tmp_path / n).write_text("old")
    with pytest.raises(OSError), atomic.atomic_paths(tmp_path / "w", tmp_path / "p") as (w, p):
        w.write_text("new")
        raise OSError("disk full before the progress file")
    assert [(tmp_path / n).read_text() for n in ("w", "p")] == ["old", "old"]
    with atomic.atomic_paths(tmp_path / "w", tmp_path / "p") as (w, p):
        w.write_text("new w")
        p.write_text("new p")
    assert [(tmp_path / n).read_text() for n in ("w", "p")] == ["new w", "new p"]
    assert _names(tmp_path) == ["p", "w"]


def test_atomic_dir_replaces_a_folder_and_follows_the_umask(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("from the last export")
    old = os.umask(0o022)
    try:
        with atomic.atomic_dir(out) as tmp:
            (tmp / "unet").mkdir()
            (tmp / "unet" / "w.bin").write_bytes(b"1")
    finally:
        os.umask(old)
    assert _names(out) == ["unet"] and (out / "unet" / "w.bin").read_bytes() == b"1"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755, "not mkdtemp's 0700"
    with pytest.raises(ValueError), atomic.atomic_dir(out) as tmp:
        (tmp / "half").write_text("x")
        raise ValueError
    assert _names(out) == ["unet"] and _names(tmp_path) == ["model"]


def test_clean_temp_files_removes_only_leftovers(tmp_path):
    keep = tmp_path / "clip.npy"
    keep.write_bytes(b"ok")
    left = atomic.temp_name(keep)
    left.write_bytes(b"half")
    assert atomic.clean_temp_files(tmp_path) == [left]
    assert _names(tmp_path) == ["clip.npy"]


def test_share_like_umask_opens_safetensors_0600_files(tmp_path):
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"")
    os.chmod(f, 0o600)
    old = os.umask(0o027)
    try:
        atomic.share_like_umask(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o640


@pytest.mark.parametrize(
    ("value", "expected"),
    [([0, 1, 2], [0, 1, 2]), (3, [3]), ((5,), [5])],
)
def test_as_seeds_accepts_distinct_non_negative_integers(value, expected):
    assert as_seeds(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], r"seeds must be a non-empty list of non-negative integers, got \[\]"),
        (None, "non-empty"),
        ([0, -1], r"got \[0, -1\]"),
        ([True], "non-negative integers"),
        ([1.5], "non-negative integers"),
        ([1, 2, 1], r"seeds lists a seed twice: \[1, 2, 1\]"),
        ({"a": 1}, "must be a list, got a mapping"),
    ],
)
def test_as_seeds_refuses_in_one_line(value, message):
    with pytest.raises(UserError, match=message) as e:
        as_seeds(value)
    assert "\n" not in str(e.value)


def test_captions_reader_is_one_line_on_bad_files(tmp_path):
    from data_gen.sources import read_captions

    good = tmp_path / "captions.json"
    good.write_text(json.dumps({"cat": "a cat jumping"}))
    assert read_captions(good) == {"cat": "a cat jumping"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cat": 3}))
    with pytest.raises(UserError, match="sketch name -> prompt"):
        read_captions(bad, value="prompt")
    with pytest.raises(UserError, match="larger than 10 bytes"):
        read_captions(good, max_bytes=10)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(UserError, match="cannot read"):
        read_captions(tmp_path / "broken.json")


def test_wandb_mode_follows_the_environment(monkeypatch):
    from flipsketch.tracking import wandb_mode
    from flipsketch.training import loggers

    assert loggers.wandb_mode is wandb_mode, "one definition"
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_OFFLINE", raising=False)
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_OFFLINE", "false")
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled" and wandb_mode(True) == "offline" and wandb_mode(False) == "online"
