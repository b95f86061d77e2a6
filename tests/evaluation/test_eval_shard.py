"""Sharded evaluation (flipsketch.evaluation.shard) on the tiny model: two workers give the one-process
table number for number, a killed shard resumes from the cache, two shards never write the same unit."""

import csv
import os
import subprocess
import sys

import pytest

import flipsketch.evaluation.evaluator as evaluator_mod
from flipsketch.errors import UserError
from flipsketch.evaluation import run_eval
from flipsketch.evaluation.evaluator import METRIC_KEYS
from tests.conftest import REPO
from tests.test_sweeps import installed

FAST = [
    "experiment=tiny_ablation",
    "methods=[full,no_align]",
    "benchmark.only=[cat,fish]",
    "seeds=[0,1]",
    "sampler.num_frames=3",
    "sampler.num_inference_steps=2",
    "sampler.tau1=1",
    "sampler.tau2=1",
    "sampler.align_iters=1",
    "logger=none",
]
SAME = ("method", "label", "item", "seed", "fingerprint", "sketch_sha", "frames", *METRIC_KEYS)


def numbers(out: dict) -> tuple[list, list]:
    """Every metric of every row and every summary statistic except timings."""
    rows = sorted(tuple(r[k] for k in SAME) for r in out["rows"])
    stats = [
        {k: v for k, v in s.items() if not k.startswith(("seconds", "score_seconds"))} for s in out["summary"]
    ]
    return rows, stats


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one")
    return tmp, run_eval([*FAST, f"paths.log_dir={tmp}", f"paths.output_dir={tmp / 'run'}"])


def _writes(monkeypatch) -> list:
    seen = []
    real = evaluator_mod.write_animation

    def spy(folder, *a, **k):
        seen.append(str(folder))
        return real(folder, *a, **k)

    monkeypatch.setattr(evaluator_mod, "write_animation", spy)
    return seen


def test_two_shards_split_the_units_resume_and_gather_the_same_table(one_process, tmp_path, monkeypatch):
    one_dir, one = one_process
    base = [*FAST, f"paths.log_dir={tmp_path}", "shard.count=2", "shard.gather=none"]
    seen = _writes(monkeypatch)
    shard0 = run_eval([*base, "shard.index=0", f"paths.output_dir={tmp_path / 's0'}"])
    written0, seen[:] = list(seen), []
    assert shard0["counts"]["generated"] == 4 and shard0["table"] == "" and shard0["metrics"] == {}
    assert not (tmp_path / "s0" / "results.md").exists()  # only the gather writes the table

    with pytest.raises(UserError, match=r"4 unit\(s\) not in the cache yet: .*\(shard 1\).*shard.index=1"):
        run_eval([*FAST, f"paths.log_dir={tmp_path}", "shard.count=2", "shard.gather=only"])

    calls = {"n": 0}
    real_generate = evaluator_mod.Evaluator.generate

    def killed(self, *a, **k):  # shard 1 dies after its first unit
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return real_generate(self, *a, **k)

    monkeypatch.setattr(evaluator_mod.Evaluator, "generate", killed)
    with pytest.raises(KeyboardInterrupt):
        run_eval([*base, "shard.index=1", f"paths.output_dir={tmp_path / 's1'}"])
    monkeypatch.setattr(evaluator_mod.Evaluator, "generate", real_generate)
    resumed = run_eval([*base, "shard.index=1", f"paths.output_dir={tmp_path / 's1b'}"])
    assert resumed["counts"] == {"generated": 3, "skipped": 1, "rescored": 0}  # the rerun resumes
    written1 = list(seen)
    assert len(written1) == 4 and len(set(written1)) == 4  # its first unit once, then the other three
    assert not set(written0) & set(written1)  # two shards never write the same unit
    assert {os.path.relpath(f, tmp_path) for f in written0 + written1} == {
        os.path.relpath(r["folder"], one_dir) for r in one["rows"]
    }  # together they write exactly the one process's units
    # shard 0 had the (method, item) pairs 0 and 2, shard 1 the pairs 1 and 3, every seed of each
    assert {(r["method"], r["item"]) for r in shard0["rows"]} == {("full", "cat"), ("no_align", "cat")}

    seen[:] = []
    gathered = run_eval(
        [
            *FAST,
            f"paths.log_dir={tmp_path}",
            "shard.count=2",
            "shard.gather=only",
            f"paths.output_dir={tmp_path / 'g'}",
        ]
    )
    assert seen == [] and gathered["counts"] == {"generated": 0, "skipped": 8, "rescored": 0}
    assert numbers(gathered) == numbers(one)  # every number
    assert (tmp_path / "g" / "results.md").is_file() and (
        tmp_path / "g" / "contact_sheets" / "cat.png"
    ).is_file()


def test_bad_shard_settings_are_one_line(tmp_path):
    with pytest.raises(UserError, match=r"shard.index must be in \[0, shard.count=2\), got 2"):
        run_eval([*FAST, f"paths.log_dir={tmp_path}", "shard.count=2", "shard.index=2"])
    with pytest.raises(UserError, match="shard.gather must be one of auto, none, only"):
        run_eval([*FAST, f"paths.log_dir={tmp_path}", "shard.gather=all"])


@pytest.mark.slow  # two fresh interpreters: about a minute of CPU (the in-process test above is the fast one)
def test_two_torchrun_style_workers_write_the_one_process_table(one_process, tmp_path):
    """Two processes with torchrun's RANK / WORLD_SIZE and the same command; worker 0 gathers."""
    args = [*FAST, f"paths.log_dir={tmp_path}", "shard.poll_s=0.2", f"paths.output_dir={tmp_path / 'run'}"]
    env = {**os.environ, "WORLD_SIZE": "2", "PYTHONPATH": f"{REPO / 'src'}:{REPO}", "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "flipsketch.eval", *args],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in (0, 1)
    ]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert "shard 1/2: 4 unit(s) done" in logs[1]
    _, one = one_process
    timing = ("seconds_mean", "seconds_std", "seconds", "status", "folder")
    for name in ("results.csv", "items.csv"):  # every number but timings (items.csv in table order)
        with open(tmp_path / "run" / name) as fh:
            merged = [{k: v for k, v in r.items() if k not in timing} for r in csv.DictReader(fh)]
        with open(os.path.join(one["run_dir"], name)) as fh:
            single = [{k: v for k, v in r.items() if k not in timing} for r in csv.DictReader(fh)]
        assert merged == single and len(merged) == (2 if name == "results.csv" else 8)


def test_gather_after_a_sweep_over_the_shards_only():
    from flipsketch.evaluation.shard import gather_overrides

    task = ["experiment=tiny_ablation", "shard.count=2", "shard.index=range(0,2)", "hydra/launcher=slurm_gpu"]
    assert gather_overrides(task, "/s") == [
        "experiment=tiny_ablation",
        "shard.count=2",
        "shard.gather=only",
        "hydra.run.dir=/s/gather",
    ]
    assert gather_overrides(["shard.index=0,1", "seeds=[0,1]"], "/s")[-2:] == [
        "shard.gather=only",
        "hydra.run.dir=/s/gather",
    ]
    assert gather_overrides(["sampler.lambda_=0,1"], "/s") is None  # not a sharded sweep
    assert gather_overrides(["shard.index=0,1", "sampler.lambda_=0,1"], "/s") is None  # one table per job


@pytest.mark.skipif(
    not installed("hydra_plugins.hydra_submitit_launcher"), reason="pip install -e '.[sweep]'"
)
def test_the_slurm_shard_sweep_composes(monkeypatch):
    from flipsketch.cli import compose_config

    monkeypatch.setenv("SLURM_PARTITION", "gpu")
    cfg = compose_config(
        "eval", ["hydra/launcher=slurm_gpu", "shard.count=4", "shard.index=3"], return_hydra_config=True
    )
    assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.shard.index == 3
    assert "gather_shards" in cfg.hydra.callbacks


@pytest.mark.slow  # a Hydra multirun in a fresh interpreter plus the gather step's
def test_a_multirun_over_the_shards_gathers_once(one_process, tmp_path):
    args = [
        *FAST,
        f"paths.log_dir={tmp_path}",
        "shard.count=2",
        "shard.index=0,1",
        f"hydra.sweep.dir={tmp_path / 'sw'}",
    ]
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}", "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None), env.pop("RANK", None)
    run = subprocess.run(
        [sys.executable, "-m", "flipsketch.eval", "-m", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (tmp_path / "sw" / "0" / "results.csv").exists()  # shard 0 did not gather in the sweep
    with open(tmp_path / "sw" / "gather" / "results.csv") as fh:
        merged = [{k: v for k, v in r.items() if not k.startswith("seconds")} for r in csv.DictReader(fh)]
    with open(os.path.join(one_process[1]["run_dir"], "results.csv")) as fh:
        single = [{k: v for k, v in r.items() if not k.startswith("seconds")} for r in csv.DictReader(fh)]
    assert merged == single
