"""The one thread rule (flipsketch.threads): the cores free at start, or the request."""

from __future__ import annotations

import pytest
import torch

from flipsketch import threads
from flipsketch.errors import UserError


@pytest.mark.parametrize(
    "cores, busy, want",
    [
        (2, 0.0, 2),
        (2, 0.4, 2),
        (2, 0.6, 1),
        (2, 1.0, 1),
        (2, 8.0, 1),
        (1, 0.0, 1),
        (16, 3.4, 13),
        (16, 40, 1),
    ],
)
def test_auto_threads_is_the_free_cores_at_least_one(cores, busy, want):
    assert threads.auto_threads(cores, busy) == want


def test_busy_cores_counts_the_load_and_what_runs_now(monkeypatch):
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    monkeypatch.setattr(threads, "_running_now", lambda: 3)
    assert threads.busy_cores() == 3.0
    monkeypatch.setattr(threads, "_running_now", lambda: None)
    assert threads.busy_cores() == 0.2


def test_choose_threads_request_then_environment_then_rule(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.5)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.choose_threads(None)[0] == 1  # busy machine: one thread
    assert threads.choose_threads("auto")[0] == 1
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    assert threads.choose_threads(None)[0] == 2  # quiet: both cores
    assert threads.choose_threads(3)[0] == 3  # a request is used as given
    assert threads.choose_threads("1")[0] == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose_threads("auto")[0] == 1  # the environment counts as a request
    assert threads.choose_threads(2)[0] == 2  # below an explicit setting


@pytest.mark.parametrize("bad", ["abc", 0, -1, True, "1.5"])
def test_bad_thread_requests_are_one_line(bad):
    with pytest.raises(UserError, match="threads must be an integer >= 1 or auto"):
        threads.parse_threads(bad)


def test_config_threads_reads_the_older_torch_threads_name():
    assert threads.config_threads({"threads": "auto", "torch_threads": 1}) == 1
    assert threads.config_threads({"threads": 2, "torch_threads": 1}) == 2
    assert threads.config_threads({"threads": None}) is None


def test_every_composed_cli_applies_threads(monkeypatch):
    """cli_main (animate, train, eval, export, data_gen) sets torch's count from `threads=`."""
    from flipsketch.cli import cli_main

    seen = []
    main = cli_main(
        "animate", lambda cfg, argv: seen.append(torch.get_num_threads()), hydra_run=False, on_exit=None
    )
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["threads=1"]) == 0
        monkeypatch.setattr(threads, "auto_threads", lambda *a: 2)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert main([]) == 0  # auto: the rule's count
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 2]


@pytest.mark.parametrize("name", ["animate", "train", "eval", "export", "data_gen"])
def test_every_task_config_has_threads(name):
    from flipsketch.cli import compose_config
    from flipsketch.config import register_configs

    register_configs()
    if name == "data_gen":
        from data_gen.settings import register_gen_defaults

        register_gen_defaults()
    assert compose_config(name, ["threads=3"]).threads == 3


def test_running_now_is_the_median_of_a_few_reads_less_this_process(monkeypatch):
    reads = iter([1, 9, 1, 2, 1])  # one passing burst does not count
    monkeypatch.setattr(threads, "_procs_running", lambda: next(reads))
    assert threads._running_now(gap_s=0.0) == 0
    monkeypatch.setattr(threads, "_procs_running", lambda: None)
    assert threads._running_now(gap_s=0.0) is None
