"""The network, offline (issue 25, item 8): a hub id while HF_HUB_OFFLINE=1, or one recorded in a
checkpoint, fails in one line at once, without a connection attempt; a URL is never a weights path.
Every test here makes opening a socket fail, so a network attempt fails the test."""

import socket

import pytest
import torch

from flipsketch.errors import MissingWeightsError


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network was contacted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_a_hub_id_offline_fails_at_once(monkeypatch):
    from flipsketch.models.loaders import check_pipeline_folder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingWeightsError, match=r"nobody/nothing is a hub id.*HF_HUB_OFFLINE=1"):
        check_pipeline_folder("nobody/nothing", "ModelScope")


def test_loading_a_hub_id_offline_never_calls_the_hub(monkeypatch):
    import huggingface_hub

    from flipsketch.models.registry import build_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("hub called"))
    with pytest.raises(MissingWeightsError, match="hub id"):
        build_model("modelscope", path="nobody/nothing", resolution=64)


@pytest.mark.parametrize("url", ["https://example.com/weights", "hf://nobody/nothing", "s3://bucket/x"])
def test_a_url_is_never_a_weights_path(url, monkeypatch):
    from flipsketch.models.loaders import check_pipeline_folder

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(MissingWeightsError, match="is a URL"):
        check_pipeline_folder(url, "ModelScope")


def test_the_animate_cli_refuses_an_offline_hub_id_in_one_line(tmp_path, sketch_png, capfd, monkeypatch):
    from flipsketch.animate import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                f"sketch={sketch_png}",
                "prompt=x",
                f"out={out}",
                "model=modelscope",
                "model.path=nobody/nothing",
            ]
        )
    assert exc.value.code == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "hub id" in err[0]
    assert not out.exists()


def _checkpoint(path, model: dict):
    """A checkpoint of our layout whose recorded model is `model` (no tensors needed to be refused)."""
    torch.save(
        {
            "flipsketch": {"lora": {"rank": 4}, "unet_targets": ["to_q"], "model": model},
            "state_dict": {},
            "global_step": 1,
        },
        path,
    )
    return path


@pytest.mark.parametrize(
    "model",
    [
        {"name": "modelscope", "path": "someone/weights"},
        {"name": "modelscope"},  # the registry default, a hub id
        {"name": "modelscope", "path": "https://example.com/x"},
    ],
)
def test_a_checkpoint_alone_never_makes_the_tool_go_online(tmp_path, monkeypatch, model):
    """Even with the hub allowed (HF_HUB_OFFLINE=0), a model named inside a checkpoint loads from
    local files only: a hub id not in the local cache is refused before anything is built."""
    from flipsketch.errors import UserError
    from flipsketch.export import export_checkpoint

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    ckpt = _checkpoint(tmp_path / "x.ckpt", model)
    with pytest.raises(UserError, match=r"named by a file \(a checkpoint\)|is a URL"):
        export_checkpoint(ckpt, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_export_cli_refuses_a_recorded_hub_id_in_one_line(tmp_path, capfd, monkeypatch):
    from flipsketch.export import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    ckpt = _checkpoint(tmp_path / "x.ckpt", {"name": "modelscope", "path": "someone/weights"})
    try:
        rc = main([f"ckpt_path={ckpt}", f"out={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run'}"])
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2
    err = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "someone/weights is a hub id" in err[0]
