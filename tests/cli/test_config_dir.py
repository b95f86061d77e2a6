"""A user's own configs join the shipped ones through Hydra's search path: `--config-dir DIR` (or
`hydra.searchpath=[...]`) works for every CLI, animate and the checks before Hydra starts included."""

from __future__ import annotations

import pytest

from flipsketch.cli import compose_config, with_config_dirs
from flipsketch.errors import UserError

EXPERIMENT = """# @package _global_
defaults:
  - tiny_smoke
  - _self_

tags: [mine]
trainer:
  max_steps: 3
"""


@pytest.fixture
def user_dir(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text(EXPERIMENT)
    return tmp_path


def test_config_dir_becomes_hydra_searchpath(user_dir):
    entry = f"hydra.searchpath=['file://{user_dir}']"
    assert with_config_dirs(["a=1", "--config-dir", str(user_dir), "b=2"]) == ["a=1", entry, "b=2"]
    assert with_config_dirs([f"-cd={user_dir}"]) == [entry]
    assert with_config_dirs(["hydra.searchpath=[pkg://x]", "-cd", str(user_dir)]) == [
        f"hydra.searchpath=[pkg://x, 'file://{user_dir}']"
    ]
    assert with_config_dirs(["a=1", "-m"]) == ["a=1", "-m"]
    with pytest.raises(UserError, match="config folder not found"):
        with_config_dirs(["--config-dir", str(user_dir / "nope")])
    with pytest.raises(UserError, match="needs a folder"):
        with_config_dirs(["--config-dir"])


def test_a_user_experiment_composes_over_the_shipped_ones(user_dir):
    with pytest.raises(UserError, match="unknown experiment=mine"):
        compose_config("train", ["experiment=mine"])
    cfg = compose_config("train", with_config_dirs(["--config-dir", str(user_dir), "experiment=mine"]))
    assert list(cfg.tags) == ["mine"] and cfg.trainer.max_steps == 3
    assert cfg.model.name == "tiny"  # from the shipped tiny_smoke it starts from


def test_a_missing_config_dir_is_one_line(tmp_path, capsys):
    from flipsketch.train import main

    with pytest.raises(SystemExit) as exc:
        main(["--config-dir", str(tmp_path / "nope"), "experiment=mine"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: config folder not found")


def test_the_install_docs_example_experiment_composes(tmp_path):
    """docs/install.md's own experiment file (its first yaml block) works as documented."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "install.md"
    block = re.findall(r"```yaml\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S)[0]
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "my_cats.yaml").write_text(block)
    cfg = compose_config("eval", with_config_dirs(["--config-dir", str(tmp_path), "experiment=my_cats"]))
    assert cfg.model.name == "tiny_pretrained" and cfg.benchmark.name == "my_cats"
    assert cfg.benchmark.root == "/data/my_sketches" and cfg.benchmark.only is None
    assert cfg.sampler.num_inference_steps == 10 and list(cfg.tags) == ["mine"]
    assert list(cfg.methods) == ["svd", "t2v_plain", "full", "official"]  # from the shipped tiny_table1
