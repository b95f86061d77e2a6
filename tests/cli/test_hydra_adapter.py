"""What flipsketch.cli.hydra_adapter relies on in Hydra, pinned against the installed hydra-core:
a Hydra upgrade that changes any of it fails here, not somewhere in a command line's messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from flipsketch.cli import compose_config, raw_compose
from flipsketch.cli import hydra_adapter as hy
from flipsketch.cli.explain import parse_overrides
from flipsketch.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def test_the_hydra_version_the_adapter_was_written_for():
    from importlib.metadata import version

    assert version("hydra-core") == hy.hydra_version() == "1.3.8"  # re-read the adapter on a change


def _hydra_parser():
    from hydra._internal.utils import get_args_parser

    return get_args_parser()


def test_flag_list_matches_hydras_own_parser():
    actions = [a for a in _hydra_parser()._actions if a.option_strings]
    assert {s for a in actions for s in a.option_strings} == hy.HYDRA_FLAGS
    valued = {s for a in actions if a.nargs is None for s in a.option_strings}
    assert valued == hy.VALUED_FLAGS
    (info,) = [a for a in actions if "--info" in a.option_strings]
    assert info.nargs == "?" and set(info.choices) == hy.INFO_CHOICES
    (cfg,) = [a for a in actions if "--cfg" in a.option_strings]
    assert tuple(cfg.choices) == hy.CFG_CHOICES
    assert hy.SHOW_FLAGS | hy.PASS_FLAGS | hy.MULTIRUN_FLAGS <= hy.HYDRA_FLAGS


def test_hydra_argv_is_what_hydras_parser_reads():
    argv = ["seed=1", "-m", "--cfg", "job", "--info", "defaults", "trainer=cpu"]
    args = _hydra_parser().parse_args(hy.hydra_argv(argv))
    assert args.multirun and args.cfg == "job" and args.info == "defaults"
    assert args.overrides == ["seed=1", "trainer=cpu"]
    with pytest.raises(UserError, match="--cfg needs a value"):
        hy.split_flags(["--cfg"])


def test_basic_sweep_expansion():
    jobs = hy.basic_sweep_jobs(parse_overrides(["a=1,2", "b=x,y", "c=3"]))
    assert jobs == [
        ["a=1", "b=x", "c=3"],
        ["a=1", "b=y", "c=3"],
        ["a=2", "b=x", "c=3"],
        ["a=2", "b=y", "c=3"],
    ]
    assert hy.basic_sweep_jobs(parse_overrides(["a=1"])) == [["a=1"]]
    assert hy.basic_sweep_jobs(parse_overrides(["lr=interval(0.1,1)"])) is None  # a sweeper's space


def test_override_values_round_trip():
    parser = hy.override_parser()
    (o,) = hy.parse_one(parser, "prompt=a,'b c'")
    assert hy.simple_choice_list(hy.override_value(o)) is not None
    (o,) = hy.parse_one(parser, "prompts=['x ${y}', z]")
    value = hy.override_value(o)
    assert hy.is_text_like(value) and hy.text_of(value[0]) == "x ${y}"
    assert hy.value_text(hy.single_quoted("it's")) == "'it\\'s'"
    assert hy.value_text(["a", hy.single_quoted("b")]) == "[a,'b']"


def _compose_error(overrides: list[str]) -> str:
    with pytest.raises(hy.hydra_errors()) as info:
        raw_compose("train", overrides)
    return str(info.value)


def test_the_wording_of_hydras_composition_errors():
    group, option, opts = hy.missing_option(_compose_error(["trainer=nope"]))
    assert (group, option) == ("trainer", "nope") and "cpu" in opts
    assert hy.unknown_key(_compose_error(["no_such_key=1"])) == "no_such_key"
    assert hy.unknown_key(_compose_error(["~no_such_key"])) == "no_such_key"
    assert hy.ambiguous_argument(_compose_error(["seed=1,2"])) == "seed=1,2"
    assert "See https://" not in hy.hydra_message("bad thing\nSee https://hydra.cc/x for more")


def test_hydras_target_block_list_is_consulted():
    assert hy.hydra_blocks_target("os.system")
    assert not hy.hydra_blocks_target("flipsketch.sweeps.SweepSummary")


def test_a_jobs_output_dir_as_hydra_gives_it(tmp_path):
    from omegaconf import open_dict

    cfg = compose_config("train", [f"hydra.sweep.dir={tmp_path}/sweep"], return_hydra_config=True)
    assert hy.job_output_dir(cfg, True, 2) == tmp_path / "sweep" / "2"
    with hy.job_hydra_config(cfg, tmp_path / "sweep" / "2"):
        assert hy.current_run_dir() == tmp_path / "sweep" / "2"
        with open_dict(cfg):
            cfg.pop("hydra")
        assert cfg.paths.output_dir == str(tmp_path / "sweep" / "2")  # ${hydra:runtime.output_dir}
    assert hy.current_run_dir() is None  # restored: outside a run there is none


def test_only_the_adapter_reaches_into_hydra_internals():
    cli = REPO / "src" / "flipsketch" / "cli"
    for path in cli.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "hydra_adapter.py":
            for word in ("hydra._internal", "BasicSweeper", "_get_value_element_as_str", "._value"):
                assert word not in text, f"{path.name} uses {word}: that belongs in hydra_adapter.py"


def test_no_private_name_is_imported_across_the_harness():
    """Nothing imports a `_name` from a flipsketch.cli module, and the cli modules import no `_name`
    of ours from another module."""
    import ast

    for root in (REPO / "src", REPO / "data_gen", REPO / "experiments"):
        for path in root.rglob("*.py"):
            in_cli = "cli" in path.relative_to(REPO).parts[:3] and path.parent.name == "cli"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                    continue
                ours = node.level > 0 or (node.module or "").startswith(("flipsketch", "data_gen"))
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private and ours and (in_cli or "cli" in (node.module or "").split(".")):
                    raise AssertionError(f"{path}: imports private {private} from {node.module}")
