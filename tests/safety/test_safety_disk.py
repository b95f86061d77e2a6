"""A full disk loses nothing (issue 25, item 10): one `error:` line and a non-zero exit, the previous
checkpoint intact (written in its own folder, then renamed), no partial output left behind.

Real full disks come from a small tmpfs (skipped where mounting is not permitted); the command lines
are driven with a patched writer that raises ENOSPC, which needs no privileges."""

from __future__ import annotations

import errno
import json
import subprocess
import uuid

import numpy as np
import pytest

from flipsketch.errors import DiskFullError, as_disk_full


@pytest.fixture
def small_disk(tmp_path):
    """A folder on its own tmpfs (size set by `fill(free_bytes)`); skipped when mount is not permitted."""
    mnt = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(disk, free_bytes: int) -> None:
    """Fill `disk` until about `free_bytes` are left."""
    import shutil

    left = shutil.disk_usage(disk).free - free_bytes
    with open(disk / "filler", "wb") as fh:
        while left > 0:
            n = min(left, 1 << 20)
            fh.write(b"\0" * n)
            left -= n


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "patched-writer")


def test_disk_full_is_recognised_through_wrappers():
    assert isinstance(as_disk_full(OSError(errno.ENOSPC, "No space left on device", "x.npy")), DiskFullError)
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("PytorchStreamWriter failed writing file data/0") from inner
    except RuntimeError as outer:
        assert as_disk_full(outer) is not None
    safetensors_text = "Error while serializing: IoError(Os { code: 28, kind: StorageFull, ... })"
    assert as_disk_full(Exception(safetensors_text)) is not None
    assert as_disk_full(OSError(errno.EACCES, "Permission denied")) is None
    assert as_disk_full(ValueError("no")) is None
    msg = str(as_disk_full(OSError(errno.ENOSPC, "No space left on device", "a/last.ckpt")))
    assert "disk full" in msg and "a/last.ckpt" in msg and "\n" not in msg


# ------------------------------------------------------------------------- training checkpoints
@pytest.fixture(scope="module")
def tiny_trained(tmp_path_factory, dataset):
    from flipsketch.training.builders import build_run
    from flipsketch.training.task import compose_train
    from tests.helpers import fast_overrides

    tmp = tmp_path_factory.mktemp("disk_train")
    run = build_run(compose_train(fast_overrides(dataset, steps=1), out_dir=tmp / "run"))
    run.trainer.fit(run.module, datamodule=run.datamodule)
    return run


def test_training_uses_the_same_folder_checkpoint_writer(tiny_trained):
    io = tiny_trained.trainer.strategy.checkpoint_io
    assert type(io).__name__ == "AtomicCheckpointIO"


def test_a_full_disk_keeps_the_previous_last_ckpt(tiny_trained, small_disk):
    """Lightning's own writer stages the file in /tmp and copies it over: on a full destination
    that left a truncated last.ckpt. Ours writes beside it and renames: the old one stays whole."""
    trainer = tiny_trained.trainer
    last = small_disk / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(last)
    before = last.read_bytes()
    assert len(before) > 100_000
    fill(small_disk, len(before) // 4)
    with pytest.raises(OSError) as exc:
        trainer.save_checkpoint(last)
    assert as_disk_full(exc.value) is not None
    assert last.read_bytes() == before  # intact, byte for byte
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]  # no temp file left

    from flipsketch.training.checkpoint import read_checkpoint

    assert read_checkpoint(last)["global_step"] == 1


def test_a_failed_flush_keeps_the_previous_checkpoint(tiny_trained, tmp_path, monkeypatch):
    trainer = tiny_trained.trainer
    last = tmp_path / "last.ckpt"
    trainer.save_checkpoint(last)
    before = last.read_bytes()
    monkeypatch.setattr("os.fsync", enospc)
    with pytest.raises(OSError):
        trainer.save_checkpoint(last)
    assert last.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


# ------------------------------------------------------------------------- command lines
def _one_error_line(capfd) -> str:
    err = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("error: disk full")
    return err[0]


def _hidden(folder):  # temp files left behind (our run-folder marker is not one)
    from flipsketch.checks import RUN_MARKER

    return [p for p in folder.rglob(".*") if p.name != RUN_MARKER] if folder.exists() else []


def test_animate_on_a_full_disk_is_one_line_and_leaves_nothing_partial(
    tmp_path, sketch_png, capfd, monkeypatch
):
    from flipsketch import outputs
    from flipsketch.animate import main

    monkeypatch.setattr(outputs, "write_mp4", enospc)
    out = tmp_path / "out"
    fast = ["model=tiny", "sampler.num_frames=4", "sampler.num_inference_steps=2", "sampler.tau1=1"]
    fast += ["sampler.tau2=1", "sampler.align_iters=1", "progress=false"]
    with pytest.raises(SystemExit) as exc:
        main([f"sketch={sketch_png}", "prompt=a ball", f"out={out}", *fast])
    assert exc.value.code == 2
    _one_error_line(capfd)
    assert not (out / "seed0").exists() and not _hidden(out)  # the sample's temp folder is gone


def test_export_merged_on_a_full_disk_leaves_no_lora_and_no_folder(
    tiny_trained, tmp_path, capfd, monkeypatch
):
    from flipsketch.export import main
    from flipsketch.models import loaders

    ckpt = tmp_path / "step.ckpt"
    tiny_trained.trainer.save_checkpoint(ckpt)
    real = loaders.save_pipeline_folder

    def half_then_full(comps, path, tokenizer=True):
        from pathlib import Path

        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "model_index.json").write_text("{}")  # something written, then the disk is full
        enospc()

    monkeypatch.setattr(loaders, "save_pipeline_folder", half_then_full)
    out = tmp_path / "export"
    rc = None
    try:
        rc = main([f"ckpt_path={ckpt}", f"out={out}", "merged=true", f"hydra.run.dir={tmp_path / 'run'}"])
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2
    _one_error_line(capfd)
    from flipsketch.checks import RUN_MARKER

    left = [p for p in out.rglob("*") if p.name != RUN_MARKER] if out.exists() else []
    assert not left, left
    assert real is not None


def _data_gen(out, size: int, frames: int, run_dir) -> int:
    """flipsketch-data into `out` (one clip per shipped sketch, one worker); its exit code."""
    from data_gen.__main__ import main

    argv = [f"out={out}", f"size={size}", f"frames={frames}", "clips_per_sketch=1", "workers=1"]
    try:
        return main([*argv, "progress=false", f"hydra.run.dir={run_dir}"])
    except SystemExit as exc:
        return exc.code


def test_data_gen_on_a_full_disk_exits_non_zero_with_only_whole_clips(small_disk, capfd):

    fill(small_disk, 150_000)  # room for a few 64x64x8 clips, not for the 17
    out = small_disk / "clips"
    assert _data_gen(out, 64, 8, small_disk.parent / "run") == 2
    err = [ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and err[0].startswith("error: disk full") and "clips are done" in err[0], err
    assert not _hidden(out)  # no temp file left
    for npy in (out / "clips").glob("*.npy") if (out / "clips").is_dir() else []:
        clip = np.load(npy)  # every clip there is whole, with its sidecar
        assert clip.shape == (8, 64, 64)
        assert json.loads(npy.with_suffix(".json").read_text())["id"] == npy.stem


def test_data_gen_exits_non_zero_when_clips_fail(tmp_path, capfd, monkeypatch):
    from data_gen import build

    real = build._frames_for
    calls = {"n": 0}

    def flaky(task, spec, loaded):
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            raise RuntimeError("boom")
        return real(task, spec, loaded)

    monkeypatch.setattr(build, "_frames_for", flaky)
    out = tmp_path / "clips"
    assert _data_gen(out, 32, 4, tmp_path / "run") == 2
    err = [ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "clips failed" in err[0] and "boom" in err[0]
    report = json.loads((out / "report.json").read_text())
    assert report["failed_clips"] and report["clips"] > 0


# ------------------------------------------------------------------------- every Hydra command line
def _hydra_cli(task, run_dir, capfd):
    from flipsketch.cli import cli_main

    main = cli_main("export", task, program="flipsketch-test", help_text="x", check=None)
    try:
        rc = main(["ckpt_path=none", f"hydra.run.dir={run_dir}"])
    except SystemExit as exc:
        rc = exc.code
    return rc


def test_a_hydra_task_on_a_full_disk_is_one_line_and_leaves_no_run_folder(tmp_path, capfd):
    def task(cfg):
        raise RuntimeError("PytorchStreamWriter failed") from OSError(errno.ENOSPC, "No space left on device")

    run_dir = tmp_path / "runs" / "r1"
    assert _hydra_cli(task, run_dir, capfd) == 2
    _one_error_line(capfd)
    assert not run_dir.exists()


def test_a_training_run_folder_with_checkpoints_is_kept_on_a_full_disk(tmp_path, capfd):
    def task(cfg):
        from pathlib import Path

        from hydra.core.hydra_config import HydraConfig

        ckpts = Path(HydraConfig.get().runtime.output_dir) / "checkpoints"
        ckpts.mkdir()
        (ckpts / "last.ckpt").write_bytes(b"a whole earlier checkpoint")
        enospc()

    run_dir = tmp_path / "runs" / "r2"
    assert _hydra_cli(task, run_dir, capfd) == 2
    _one_error_line(capfd)
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == b"a whole earlier checkpoint"


def test_the_app_says_disk_full_in_one_line(tmp_path, sketch_png, monkeypatch):
    from flipsketch import outputs
    from flipsketch.app import FlipSketchApp

    app = FlipSketchApp(["device=cpu", "model=tiny"], tmp_path / "results", keep=3)
    monkeypatch.setattr(outputs, "write_gif", enospc)
    status = app.run(str(sketch_png), None, "upload", "a ball", 0.5, 2, 3, False, "0", "tiny")[0]
    assert status.startswith("**Error:** disk full") and "\n" not in status and "internal error" not in status


def test_a_killed_writers_temp_folder_is_removed_by_the_next_sample(tmp_path):
    """kill -9 during a write leaves `.seed0.tmp-<pid>-<hex>`; the next write beside it removes it."""
    import sys

    from flipsketch.outputs import write_animation

    pid = int(subprocess.run([sys.executable, "-c", "print(__import__('os').getpid())"],
                             capture_output=True, text=True).stdout)  # fmt: skip
    stale = tmp_path / f".seed0.tmp-{pid}-0badf00d"
    stale.mkdir()
    (stale / "animation.gif").write_bytes(b"GIF8")
    frames = np.full((2, 16, 16), 255, np.uint8)
    write_animation(tmp_path / "seed1", frames, {}, 10, ("gif",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed1"]


def test_an_mp4_on_a_full_disk_raises_instead_of_leaving_a_truncated_video(small_disk, capfd):
    """ffmpeg does not pass its exit status on: the video used to be left truncated, with ffmpeg's
    log lines on stderr and no error. Now the unfinished file is caught (no `moov` index)."""
    from flipsketch.outputs import mp4_complete, write_mp4

    frames = np.random.default_rng(0).integers(0, 255, (16, 256, 256), dtype=np.uint8)
    whole = small_disk / "whole.mp4"
    write_mp4(whole, frames[:2], 10)
    assert mp4_complete(whole)
    fill(small_disk, 64 * 1024)
    with pytest.raises(OSError) as exc:
        write_mp4(small_disk / "a.mp4", frames, 10)
    assert exc.value.errno == errno.ENOSPC
    assert capfd.readouterr().err == ""  # no ffmpeg log lines


def test_a_truncated_mp4_is_not_complete(tmp_path):
    from flipsketch.outputs import mp4_complete, write_mp4

    path = tmp_path / "a.mp4"
    write_mp4(path, np.full((3, 32, 32), 128, np.uint8), 10)
    data = path.read_bytes()
    assert mp4_complete(path)
    path.write_bytes(data[: len(data) // 2])
    assert not mp4_complete(path)
    path.write_bytes(b"garbage!" * 10)
    assert not mp4_complete(path)
