"""--help of every CLI is a short page (what it does, usage, the groups that apply), not the config."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    ("module", "groups"),
    [
        ("flipsketch.train", ["trainer=default", "logger=csv", "hparams_search=(none)"]),
        ("flipsketch.eval", ["sampler=flipsketch", "benchmark=shipped", "logger=wandb"]),
        ("flipsketch.export", ["model=(none)"]),
        ("data_gen.__main__", []),
    ],
)
def test_help_is_a_short_page(module, groups, capsys):
    main = importlib.import_module(module).main
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert 8 <= len(lines) <= 45 and "Usage" in out and "--cfg job" in out
    assert "_target_" not in out and "hydra:" not in out  # not the composed config
    for g in groups:
        assert any(line.strip().startswith(g) for line in lines), g


def test_eval_help_lists_only_eval_experiments(capsys):
    from flipsketch.eval import main

    main(["-h"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("experiment="))
    assert "tiny_table1" in line and "tiny_smoke" not in line and "paper_lora" not in line
