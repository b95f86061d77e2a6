"""Each default is written once: in its dataclass. The YAML files start from the dataclass's node and
hold only what they change; the composed configs carry the dataclass defaults."""

from __future__ import annotations

from dataclasses import fields

import yaml
from omegaconf import OmegaConf

from data_gen.settings import gen_config, gen_defaults, register_gen_defaults
from flipsketch.cli import CONF_DIR, compose_config
from flipsketch.config import SamplerConfig


def _keys(path) -> set[str]:
    return set(yaml.safe_load(path.read_text()) or {}) - {"defaults", "hydra"}


def test_the_yaml_files_repeat_no_default():
    assert _keys(CONF_DIR / "sampler" / "flipsketch.yaml") == set()
    assert _keys(CONF_DIR / "data_gen.yaml") == set()


def test_composed_sampler_is_the_dataclass_defaults():
    cfg = compose_config("animate", ["sketch=x.png", "prompt=p", "sampler=flipsketch"])
    composed = SamplerConfig.from_dict(OmegaConf.to_container(cfg.sampler, resolve=True))
    assert composed == SamplerConfig()


def test_composed_data_gen_is_the_dataclass_defaults(tmp_path):
    register_gen_defaults()
    cfg = compose_config("data_gen", [f"out={tmp_path}"])
    raw = OmegaConf.to_container(cfg, resolve=True)
    assert {k: v for k, v in raw.items() if k != "out"} == {
        k: v for k, v in gen_defaults().items() if k != "out"
    }
    built, reference = gen_config(raw), gen_config({"out": str(tmp_path)})
    assert all(getattr(built, f.name) == getattr(reference, f.name) for f in fields(built))
