"""flipsketch-train's typed settings (flipsketch.config, built by flipsketch.training.settings): a wrong
type, an out-of-range value and an unknown key each give the one-line message the hand-written check
gave; the LoRA's defaults are written once; trainer precisions are one list."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from flipsketch.cli import CONF_DIR, compose_config
from flipsketch.config import (
    PRECISIONS,
    DataSettings,
    LoraSettings,
    ModuleSettings,
    SamplerConfig,
    TrainerSettings,
)
from flipsketch.errors import UserError
from flipsketch.train import check
from flipsketch.training.settings import build

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ["experiment=tiny_smoke", "logger=none"]


def refused(*overrides: str) -> str:
    with pytest.raises(UserError) as exc:
        check(compose_config("train", [*SMOKE, *overrides]))
    return str(exc.value)


@pytest.mark.parametrize(
    "override, message",
    [  # a wrong type
        ("trainer.max_steps=abc", "trainer.max_steps must be an integer, got 'abc'"),
        ("data.num_frames=2.5", "data.num_frames must be an integer, got 2.5"),
        ("data.cache_latents=maybe", "data.cache_latents must be true or false, got 'maybe'"),
        ("trainer.val_check_interval=often", "trainer.val_check_interval must be a number, got 'often'"),
        ("train=null", "train must be true or false, got None"),
        ("data.num_workers=null", "data.num_workers must be an integer, got None"),
        # out of range
        ("seed=-5", "seed must be >= 0, got -5"),
        ("data.num_frames=0", "data.num_frames must be >= 1, got 0"),
        ("trainer.max_steps=-2", "trainer.max_steps must be >= -1, got -2"),
        ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val must be >= 0, got -1"),
        ("module.lora.rank=5000", "module.lora.rank must be <= 4096, got 5000"),
        ("module.lora.dropout=1.5", "module.lora.dropout must be <= 1, got 1.5"),
        ("module.caption_dropout=-0.1", "module.caption_dropout must be >= 0, got -0.1"),
        ("module.optimizer.lr=0", "module.optimizer.lr must be > 0, got 0"),
        ("data.latent_mode=median", "data.latent_mode must be one of sample, mean, got 'median'"),
        (
            "trainer.precision=17",
            f"trainer.precision must be one of {', '.join(PRECISIONS)}, got 17",
        ),
        (
            "module.lora.targets=everything",
            "module.lora.targets must be attn, spatial, temporal, all or a list of module names, "
            "got 'everything'",
        ),
    ],
)
def test_a_bad_value_gives_the_old_one_line_message(override, message):
    assert refused(override) == message


def test_an_unknown_key_gives_the_old_message(tmp_path):
    from flipsketch.train import main

    with pytest.raises(UserError, match=r"unknown setting 'trainer\.max_stepz'"):
        compose_config("train", [*SMOKE, "trainer.max_stepz=3"])
    with pytest.raises(SystemExit) as exc:  # the command line: one error line, exit code 2
        main([*SMOKE, f"paths.log_dir={tmp_path}", "trainer.max_stepz=3"])
    assert exc.value.code == 2
    assert not (tmp_path / "train").exists()


def test_the_settings_check_only_what_they_declare():
    # the groups are the DataModule's and Lightning's keyword arguments: a key the class does not
    # declare (a _target_, trainer.devices) is the consumer's, not refused here
    cfg = OmegaConf.create({"_target_": "x.Y", "devices": "auto", "max_steps": 7, "precision": 16})
    trainer = build(TrainerSettings, cfg, "trainer")
    assert (trainer.max_steps, trainer.precision, trainer.enable_progress_bar) == (7, 16, True)
    # a value only the run can resolve (${paths.output_dir}) is left for the run
    data = build(DataSettings, OmegaConf.create({"num_frames": "${nowhere}", "batch_size": 2}), "data")
    assert (data.num_frames, data.batch_size, data.num_workers) == (None, 2, 0)
    module = build(ModuleSettings, OmegaConf.create({"lora": {"rank": 8}, "optimizer": {"lr": 1e-3}}))
    assert module.lora == LoraSettings(rank=8) and module.optimizer.lr == 1e-3


def test_the_smoke_config_passes_and_the_sampler_messages_stay():
    check(compose_config("train", SMOKE))
    with pytest.raises(UserError, match=r"^sampler\.num_frames must be an integer, got 'abc'$"):
        SamplerConfig.from_dict({"num_frames": "abc"})
    with pytest.raises(
        UserError, match=r"^unknown sampler setting\(s\): lamda_; did you mean sampler\.lambda_\?$"
    ):
        SamplerConfig.from_dict({"lamda_": 0.3})


def test_the_lora_defaults_are_written_once():
    from flipsketch.training.module import default_lora

    lora = yaml.safe_load((CONF_DIR / "train.yaml").read_text())["module"]["lora"]
    assert lora == {}  # conf/train.yaml holds only comments: the values are LoraSettings'
    composed = compose_config("train", ["logger=none"]).module.lora
    assert OmegaConf.to_container(composed) == asdict(LoraSettings()) == default_lora()


def test_the_precision_list_has_one_home():
    # a trainer precision written as a string literal anywhere but flipsketch/config.py is a second list
    literal = re.compile(r"""["'](?:bf16-mixed|16-true|bf16-true|transformer-engine)["']""")
    homes = [
        str(p.relative_to(ROOT))
        for folder in ("src", "experiments", "data_gen")
        for p in (ROOT / folder).rglob("*.py")
        if literal.search(p.read_text())
    ]
    assert homes == ["src/flipsketch/config.py"]
