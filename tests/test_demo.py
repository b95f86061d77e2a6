"""`make demo` end to end (data -> LoRA -> evaluation with ablations), in a scratch folder."""

import subprocess
import sys

import pytest

from flipsketch.demo import main


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")  # restored afterwards: the demo sets it only if unset
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb_data"))
    return tmp_path


def _one_run(tmp_path):
    runs = list((tmp_path / "logs" / "demo").iterdir())
    assert len(runs) == 1
    return runs[0]


def test_demo_stages_connect_on_the_random_tiny_model(scratch, capfd):
    assert main(["--model", "tiny"]) == 0
    printed = capfd.readouterr()
    out = printed.out
    # the sampling stage says where it is (one line per item), Lightning's noise is gone
    assert "[1/8] full cat seed0: S2V" in out and "[8/8] " in out, out[-3000:]
    assert "Total FLOPs" not in out + printed.err and "log_every_n_steps" not in out + printed.err
    for label in ("FlipSketch", "w/o frame alignment", "w/o C^T and C^S", "Text-to-video (no sketch)"):
        assert f"| {label} |" in out
    run = _one_run(scratch)
    assert (run / "train" / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert len(list(run.rglob("animation.gif"))) == 4 * 1 * 2  # 4 methods x 1 sketch x 2 seeds
    assert (run / "eval" / "results.md").is_file() and list((run / "eval" / "wandb").glob("offline-run-*"))


@pytest.mark.slow
def test_default_demo_on_tiny_pretrained(scratch, capsys):
    """`make demo` itself: the shipped model, held-out sketches, a few minutes."""
    assert main([]) == 0
    out = capsys.readouterr().out
    for label in ("FlipSketch", "w/o frame alignment", "w/o C^T and C^S", "Text-to-video (no sketch)"):
        assert f"| {label} |" in out
    run = _one_run(scratch)
    assert len(list(run.rglob("animation.gif"))) == 5 * 2  # 5 methods x 2 held-out sketches x 1 seed
    import json
    from pathlib import Path

    rows = [json.loads(line) for line in (run / "data" / "metadata.jsonl").read_text().splitlines()]
    stems = {Path(r["source"]).stem for r in rows}
    assert stems and not stems & {"balloon", "fish"}, "the sampled sketches are held out of training"


def test_demo_help_names_both_models():
    r = subprocess.run([sys.executable, "-m", "flipsketch.demo", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "tiny_pretrained" in r.stdout and "--model" in r.stdout
