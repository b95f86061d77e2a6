"""`make demo` end to end (data -> LoRA -> evaluation with ablations), in a scratch folder."""

from flipsketch.demo import main


def test_demo_runs_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")  # restored afterwards: the demo sets it only if unset
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb_data"))
    assert main([]) == 0
    out = capsys.readouterr().out
    for label in ("FlipSketch", "w/o frame alignment", "w/o C^T and C^S", "Text-to-video (no sketch)"):
        assert f"| {label} |" in out
    runs = list((tmp_path / "logs" / "demo").iterdir())
    assert len(runs) == 1
    run = runs[0]
    assert (run / "train" / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert len(list(run.rglob("animation.gif"))) == 8 * 2 * 2  # 8 methods x 2 sketches x 2 seeds
    assert (run / "eval" / "results.md").is_file() and list((run / "eval" / "wandb").glob("offline-run-*"))
