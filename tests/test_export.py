"""Export: checkpoint -> pytorch_lora_weights.safetensors and a merged model folder."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from flipsketch.errors import UserError
from flipsketch.export import export_checkpoint
from flipsketch.models import build_model
from flipsketch.training.builders import build_run
from flipsketch.training.task import compose_train
from tests.helpers import fast_overrides


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset):
    """A tiny run with text-encoder LoRA too, 3 steps at a high lr so the LoRA is far from zero."""
    tmp = tmp_path_factory.mktemp("export")
    extra = [
        "module.lora.text_encoder=true",
        "module.optimizer.lr=5e-2",
        "callbacks.model_checkpoint.every_n_train_steps=3",
    ]
    run = build_run(compose_train(fast_overrides(dataset, steps=3) + extra, out_dir=tmp / "run"))
    run.trainer.fit(run.module, datamodule=run.datamodule)
    run.module.eval()
    return run, tmp / "run" / "checkpoints" / "step_000003.ckpt"


def unet_out(unet, text_encoder, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 4, 4, 8, 8, generator=g)
    ids = torch.randint(0, 49000, (1, 77), generator=g)
    with torch.no_grad():
        emb = text_encoder(ids)[0]
        return unet(x, 321, encoder_hidden_states=emb).sample


def test_lora_export_loads_into_a_fresh_model_with_identical_outputs(trained, tiny, tmp_path):
    run, ckpt = trained
    result = export_checkpoint(ckpt, tmp_path / "lora")
    assert result["global_step"] == 3
    fresh = build_model("tiny", lora=result["lora"])
    expected = unet_out(run.module.unet, run.module.text_encoder)
    assert torch.equal(unet_out(fresh.unet, fresh.text_encoder), expected)
    assert not torch.allclose(unet_out(tiny.unet, tiny.text_encoder), expected, atol=1e-4)  # LoRA matters


def test_merged_folder_loads_with_the_modelscope_loader(trained, tmp_path):
    run, ckpt = trained
    result = export_checkpoint(ckpt, tmp_path / "out", merged=True)
    # the merged model lands in out/ itself (beside the LoRA file), not one level down in out/merged/
    assert result["merged"] == str(tmp_path / "out") and not (tmp_path / "out" / "merged").exists()
    assert (tmp_path / "out" / "model_index.json").is_file()
    assert (tmp_path / "out" / "pytorch_lora_weights.safetensors").is_file()
    merged = build_model("modelscope", path=tmp_path / "out", resolution=64)
    assert not any("lora_" in n for n, _ in merged.unet.named_parameters())
    expected = unet_out(run.module.unet, run.module.text_encoder)
    torch.testing.assert_close(unet_out(merged.unet, merged.text_encoder), expected, rtol=0, atol=1e-5)


def test_export_cli(trained, tmp_path):
    run, ckpt = trained
    out = tmp_path / "cli"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "flipsketch.export",
            f"ckpt_path={ckpt}",
            f"out={out}",
            f"paths.log_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "pytorch_lora_weights.safetensors").is_file() and not (out / "merged").exists()


def test_export_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        export_checkpoint(tmp_path / "missing.ckpt")
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(UserError, match="not a flipsketch-train checkpoint"):
        export_checkpoint(bad)
    proc = subprocess.run(
        [sys.executable, "-m", "flipsketch.export", f"paths.log_dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: no checkpoint")


def _hostile_meta(target: str, **kwargs) -> dict:
    return {
        "lora": {"rank": 4},
        "unet_targets": [],
        "text_encoder_targets": [],
        "model": {"_target_": target, **kwargs},
    }


class _Payload:
    """Unpickling this object would create a folder (a stand-in for running any code)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import os

        return (os.makedirs, (self.path,))


def test_a_hostile_checkpoint_never_runs_code(tmp_path, capsys):
    """The model config stored in a checkpoint is data: a `_target_` naming any callable (here
    os.makedirs) is refused, not called; a pickled payload is refused by weights_only loading."""
    from flipsketch.export import main

    pwned = tmp_path / "pwned"
    cases = {
        "target.ckpt": {
            "flipsketch": _hostile_meta("os.makedirs", name=str(pwned)),
            "state_dict": {},
            "global_step": 1,
        },
        "unknown_name.ckpt": {
            "flipsketch": _hostile_meta("flipsketch.models.build_model", name=str(pwned)),
            "state_dict": {},
        },
        "pickle.ckpt": {"flipsketch": {}, "state_dict": {}, "payload": _Payload(pwned)},
    }
    for name, ckpt in cases.items():
        torch.save(ckpt, tmp_path / name)
        with pytest.raises(SystemExit) as exc:
            main(
                [
                    f"ckpt_path={tmp_path / name}",
                    f"out={tmp_path / 'out'}",
                    f"paths.log_dir={tmp_path / 'logs'}",
                ]
            )
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
        assert not pwned.exists(), f"{name} ran code"
        assert not (tmp_path / "out").exists() and not (tmp_path / "logs").exists()
        assert {
            "target.ckpt": "registry name",
            "unknown_name.ckpt": "unknown model",
            "pickle.ckpt": "not a readable",
        }[name] in err[0]
