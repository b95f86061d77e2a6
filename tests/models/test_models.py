"""Foundation: config groups, the model registry, LoRA round trips, real-folder loading."""

import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate

from flipsketch.cli import CONF_DIR, compose_config
from flipsketch.errors import MissingWeightsError, UserError
from flipsketch.models import MODEL_REGISTRY, build_model
from flipsketch.models import lora as L
from flipsketch.models.loaders import save_pipeline_folder


def _forward(unet, seed=0, frames=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 4, frames, 8, 8, generator=g)
    e = torch.randn(1, 77, 32, generator=g)
    with torch.no_grad():
        return unet(x, 500, encoder_hidden_states=e).sample


def test_every_model_config_composes():
    names = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
    assert {"tiny", "modelscope", "flipsketch_ckpt", "modelscope_random"} <= set(names)
    for name in names:
        cfg = compose_config("animate", [f"model={name}"])
        assert cfg.model.name == name
        assert cfg.model.name in MODEL_REGISTRY


@pytest.mark.parametrize("group", ["sampler", "output", "paths", "logger"])
def test_every_option_of_each_group_composes(group):
    """Each option composes, is the one picked, and its own settings are what the run sees."""
    from omegaconf import OmegaConf

    options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    assert options
    for option in options:
        key = f"{group}@probe" if group == "logger" else group
        cfg = compose_config(
            "animate", [f"+{key}={option}" if group == "logger" else f"{key}={option}"], True
        )
        assert cfg.hydra.runtime.choices[key] == option
        node = OmegaConf.to_container(cfg.probe if group == "logger" else cfg[group], resolve=False)
        own = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{option}.yaml"), resolve=False) or {}
        for k, v in own.items():
            if k != "defaults":
                assert node[k] == v, (group, option, k)


def test_sampler_defaults_are_the_papers():
    s = compose_config("animate", []).sampler
    assert (s.num_frames, s.num_inference_steps, s.guidance_scale) == (10, 25, 9.0)
    assert (s.tau1, s.tau2, s.lambda_) == (None, None, 0.5)  # tau: the paper's 10 and 15 of 25, scaled
    from omegaconf import OmegaConf

    from flipsketch.config import SamplerConfig

    assert SamplerConfig.from_dict(OmegaConf.to_container(s)).resolved_taus() == (10, 15)
    assert (s.align, s.align_iters, s.align_lr) == (True, 10, 1e-3)
    assert not any(s.faithful[k] for k in s.faithful if isinstance(s.faithful[k], bool))


def test_tiny_builds_deterministically_and_runs_forward(fresh_tiny):
    cfg = compose_config("animate", ["model=tiny"])
    a, b = instantiate(cfg.model), fresh_tiny()
    for pa, pb in zip(a.unet.parameters(), b.unet.parameters(), strict=True):
        assert torch.equal(pa, pb)
    out = _forward(a.unet)
    assert out.shape == (1, 4, 3, 8, 8) and torch.isfinite(out).all()
    assert type(a.unet).__name__ == "UNet3DConditionModel"
    assert type(a.text_encoder).__name__ == "CLIPTextModel"
    assert len(a.tokenizer) == 49408
    assert a.latent_size == 8 and a.scaling_factor == pytest.approx(0.18215)


def test_unknown_model_is_a_user_error():
    with pytest.raises(UserError, match="unknown model"):
        build_model("nope")


@pytest.mark.parametrize("targets", ["attn", "spatial", "temporal", "all"])
def test_lora_round_trip(tmp_path, targets, tiny, fresh_tiny):
    src = fresh_tiny()
    names = L.add_lora(src.unet, targets=targets, init=False)  # random B: a non-zero delta
    assert names and all(p.requires_grad for p in L.lora_parameters(src.unet))
    path = L.save_lora(tmp_path, src.unet)
    assert path.name == "pytorch_lora_weights.safetensors"
    before = _forward(tiny.unet)
    fresh2 = build_model("tiny", lora=str(path))
    assert torch.allclose(_forward(fresh2.unet), _forward(src.unet), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(_forward(fresh2.unet), before)


def test_lora_keys_use_the_diffusers_layout(tmp_path, fresh_tiny):
    from safetensors import safe_open

    c = fresh_tiny()
    L.add_lora(c.unet, targets="attn")
    L.add_lora(c.text_encoder, targets="text_encoder")
    path = L.save_lora(tmp_path, c.unet, c.text_encoder)
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
    assert any(
        k.startswith("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A") for k in keys
    )
    assert any(k.startswith("text_encoder.") for k in keys)
    assert all(".lora_A." in k or ".lora_B." in k for k in keys)


def test_fuse_unfuse_and_merged_state_dict(fresh_tiny):
    c = fresh_tiny()
    L.add_lora(c.unet, init=False)
    ref = _forward(c.unet)
    assert L.set_lora_merged(c.unet, True) > 0
    assert torch.allclose(_forward(c.unet), ref, atol=1e-5)
    L.set_lora_merged(c.unet, False)
    plain = fresh_tiny()
    plain.unet.load_state_dict(L.merged_base_state_dict(c.unet))
    assert torch.allclose(_forward(plain.unet), ref, atol=1e-5)


def test_a_merged_lora_leaves_a_plain_model_that_takes_the_next_lora_silently(fresh_tiny):
    import warnings

    c = fresh_tiny()
    L.add_lora(c.unet, init=False)
    ref = _forward(c.unet)
    assert L.merge_lora_into(c.unet) > 0
    assert not hasattr(c.unet, "peft_config") and not any("lora_" in k for k in c.unet.state_dict())
    assert torch.allclose(_forward(c.unet), ref, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # peft warns of "multiple adapters" on a stale peft_config
        L.add_lora(c.unet)
    assert torch.allclose(_forward(c.unet), ref, atol=1e-5)  # a fresh LoRA starts at zero


def test_modelscope_loader_reads_the_real_folder_layout(tmp_path, tiny):
    src = tiny
    folder = save_pipeline_folder(src, tmp_path / "text-to-video-ms-1.7b")
    assert (folder / "model_index.json").is_file()
    assert list((folder / "unet").glob("*.safetensors"))
    cfg = compose_config("animate", ["model=modelscope", f"model.path={folder}", "model.resolution=64"])
    loaded = instantiate(cfg.model)
    assert type(loaded.unet) is type(src.unet)
    assert torch.equal(_forward(loaded.unet), _forward(src.unet))
    ids = loaded.tokenizer("a cat jumping").input_ids
    assert ids == src.tokenizer("a cat jumping").input_ids


def test_flipsketch_ckpt_with_raw_lora_list(tmp_path, tiny):
    src = tiny
    folder = save_pipeline_folder(src, tmp_path / "checkpoint-2500")
    lins = [m for n, m in src.unet.named_modules() if n in set(L.target_module_names(src.unet, "attn"))]
    g = torch.Generator().manual_seed(1)
    raw = []
    for lin in lins:
        raw += [
            torch.randn(lin.out_features, 4, generator=g) * 0.01,
            torch.randn(4, lin.in_features, generator=g),
        ]
    torch.save(raw, tmp_path / "2500_unet.pt")
    c = build_model(
        "flipsketch_ckpt", path=str(folder), raw_lora=str(tmp_path / "2500_unet.pt"), resolution=64
    )
    assert c.info["raw_lora"]["layers"] == len(lins)
    assert not torch.allclose(_forward(c.unet), _forward(src.unet))
    torch.save(raw[:-2], tmp_path / "short.pt")
    with pytest.raises(UserError, match="pairs"):
        build_model("flipsketch_ckpt", path=str(folder), raw_lora=str(tmp_path / "short.pt"), resolution=64)


def test_missing_weights_is_one_clear_line(tmp_path):
    with pytest.raises(MissingWeightsError) as e:
        build_model("modelscope", path=str(tmp_path / "absent"))
    msg = str(e.value)
    assert "\n" not in msg and "absent" in msg and "unet/" in msg
    (tmp_path / "partial" / "unet").mkdir(parents=True)
    with pytest.raises(MissingWeightsError, match="lacks"):
        build_model("modelscope", path=str(tmp_path / "partial"))


def test_missing_weights_cli_exit_code_and_no_traceback(tmp_path, sketch_png):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "flipsketch.animate",
            "model=modelscope",
            f"model.path={tmp_path / 'absent'}",
            f"sketch={sketch_png}",
            "prompt=a cat",
            f"out={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.startswith("error:")]) == 1
    assert not (tmp_path / "out").exists()


def test_written_weights_are_readable_by_teammates_and_by_older_transformers(tiny, fresh_tiny, tmp_path):
    """Exports follow the umask (safetensors alone writes 0600) and carry vocab.json + merges.txt."""
    import json
    import os

    import diffusers

    from flipsketch.models.loaders import save_pipeline_folder
    from flipsketch.models.lora import add_lora, save_lora

    old = os.umask(0o022)
    try:
        out = save_pipeline_folder(tiny, tmp_path / "m")
        own = fresh_tiny()  # the session's model stays without adapters
        add_lora(own.unet, rank=2)
        lora = save_lora(tmp_path / "lora.safetensors", own.unet)
    finally:
        os.umask(old)
    files = [f for f in out.rglob("*") if f.is_file()] + [lora]
    assert files and all(f.stat().st_mode & 0o777 == 0o644 for f in files), {
        f.name: oct(f.stat().st_mode) for f in files
    }
    tok = out / "tokenizer"
    assert {"tokenizer.json", "vocab.json", "merges.txt"} <= {p.name for p in tok.iterdir()}
    vocab = json.loads((tok / "vocab.json").read_text())
    assert len(vocab) == len(tiny.tokenizer)
    assert list(vocab.values()) == sorted(vocab.values())  # id order: the same bytes on every run
    assert json.loads((out / "model_index.json").read_text())["_diffusers_version"] == diffusers.__version__


def test_lora_file_loads_with_plain_peft_and_keeps_alpha(tmp_path, tiny, fresh_tiny):
    """The README's recipe: LoraConfig from the file's `lora_adapter_metadata` + inject + set state dict
    gives the same UNet as our loader, also with alpha != rank (which peft would otherwise take = rank)."""
    import json

    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict
    from safetensors import safe_open

    from flipsketch.models.lora import add_lora, load_lora, save_lora

    src = fresh_tiny()
    add_lora(src.unet, rank=4, alpha=2.0)
    with torch.no_grad():
        for n, p in src.unet.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    path = save_lora(tmp_path / "l.safetensors", src.unet)

    ours = fresh_tiny()
    load_lora(path, ours.unet)
    plain = fresh_tiny()
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["lora_adapter_metadata"])
        sd = {k[len("unet.") :]: f.get_tensor(k) for k in f.keys() if k.startswith("unet.")}
    cfg = {k[len("unet.") :]: v for k, v in meta.items() if k.startswith("unet.")}
    assert cfg["r"] == 4 and cfg["lora_alpha"] == 2.0
    inject_adapter_in_model(LoraConfig(**cfg), plain.unet)
    set_peft_model_state_dict(plain.unet, sd)
    x = torch.randn(1, 4, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    emb = torch.randn(1, 77, ours.text_encoder.config.hidden_size)
    with torch.no_grad():
        a = ours.unet(x, 10, encoder_hidden_states=emb).sample
        b = plain.unet(x, 10, encoder_hidden_states=emb).sample
        base = tiny.unet(x, 10, encoder_hidden_states=emb).sample
    assert torch.equal(a, b) and not torch.allclose(a, base)
