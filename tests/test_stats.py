"""flipsketch.stats: bootstrap intervals with a known answer, pairing, determinism, the clear-best rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flipsketch.errors import UserError
from flipsketch.evaluation.methods import Method
from flipsketch.evaluation.table import summarize, to_markdown
from flipsketch.stats import (
    StatsSettings,
    clear_best,
    mean_interval,
    n_needed,
    n_text,
    paired_difference,
)

FAST = StatsSettings(bootstrap=400)


def test_the_interval_covers_the_true_mean_at_about_the_stated_rate():
    rng = np.random.default_rng(123)
    hits = 0
    for k in range(300):
        ci = mean_interval(rng.normal(2.0, 1.0, size=40), StatsSettings(bootstrap=400, seed=k))
        hits += ci["lo"] <= 2.0 <= ci["hi"]
    assert 0.89 <= hits / 300 <= 0.99  # nominal 95%; the percentile bootstrap runs a little short at n=40


def test_a_paired_interval_is_much_narrower_than_an_unpaired_one_on_correlated_data():
    rng = np.random.default_rng(0)
    unit = rng.normal(0.9, 0.05, size=30)  # what a (sketch, seed) unit does to both methods
    a = {f"s{i}/seed0": float(u + 0.01 + rng.normal(0, 0.002)) for i, u in enumerate(unit)}
    b = {f"s{i}/seed0": float(u + rng.normal(0, 0.002)) for i, u in enumerate(unit)}
    p = paired_difference(a, b, FAST)
    ra, rb = np.random.default_rng(1), np.random.default_rng(2)
    va, vb = np.array(list(a.values())), np.array(list(b.values()))
    unpaired = va[ra.integers(0, 30, (400, 30))].mean(1) - vb[rb.integers(0, 30, (400, 30))].mean(1)
    lo, hi = np.percentile(unpaired, [2.5, 97.5])
    assert (p["hi"] - p["lo"]) < 0.2 * (hi - lo)
    assert p["excludes_zero"] and lo < 0 < hi  # paired sees the +0.01, unpaired cannot
    assert math.isclose(p["diff"], 0.01, abs_tol=0.002) and p["n"] == 30


def test_pairs_only_the_common_units_and_says_n():
    a = {"x/seed0": 1.0, "x/seed1": 2.0, "y/seed0": 3.0}
    b = {"x/seed0": 0.5, "y/seed0": 2.5, "z/seed0": 9.0}
    p = paired_difference(a, b, FAST)
    assert p["n"] == 2 and p["diff"] == 0.5 and p["lo"] == p["hi"] == 0.5


def test_exactly_deterministic_with_a_seed():
    v = np.random.default_rng(5).normal(size=25)
    assert mean_interval(v, StatsSettings(seed=3)) == mean_interval(v, StatsSettings(seed=3))
    assert mean_interval(v, StatsSettings(seed=3)) != mean_interval(v, StatsSettings(seed=4))
    assert mean_interval([], FAST)["n"] == 0 and math.isnan(mean_interval([], FAST)["mean"])


def test_seeds_needed_follows_the_80_percent_power_formula():
    assert n_needed(1.0, 0.5) == math.ceil((2.8 * 1.0 / 0.5) ** 2) == 32
    assert n_text(n_needed(0.016, 0.0)) == "> 10000" and n_text(n_needed(0.016, 0.00001)) == "> 10000"
    assert n_needed(float("nan"), 0.1) is None and n_text(None) == "?"


def test_clear_best_without_shared_units_compares_the_intervals():
    far = clear_best({"lo": 0.9, "hi": 0.95}, {"lo": 0.8, "hi": 0.85})
    near = clear_best({"lo": 0.9, "hi": 0.95}, {"lo": 0.85, "hi": 0.91})
    assert far["clear"] and far["how"] == "intervals" and near["clear"] is False
    assert clear_best({"value": 1.0}, {"value": 0.5})["clear"] is None  # one number each: untestable


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"bootstrap": 10}, "stats.bootstrap must be >= 100"),
        ({"confidence": 1.5}, "stats.confidence must be a number between 0.5 and 1"),
        ({"confidence": "high"}, "stats.confidence"),
        ({"seed": -1}, "stats.seed must be >= 0"),
        ({"resamples": 5}, "stats.resamples is not a setting"),
    ],
)
def test_bad_stats_settings_are_one_line(node, message):
    with pytest.raises(UserError, match=message):
        StatsSettings.from_config(node)


def test_the_table_shows_intervals_and_paired_differences_on_common_units():
    methods = [Method("full", "FlipSketch", "variant", {}), Method("t2v_plain", "T2V", "baseline", {})]
    rng, rows = np.random.default_rng(7), []
    for item in ("a", "b", "c", "d"):
        for seed in (0, 1, 2):
            u = rng.normal(0, 0.02)
            for m, base in (("full", 0.95), ("t2v_plain", 0.80)):
                if m == "t2v_plain" and item == "d" and seed == 2:
                    continue  # a missing unit: the pairing uses the 11 common ones
                rows.append({"method": m, "item": item, "seed": seed, "s2v": base + u, "t2v": 0.3 + u,
                             "chamfer": 1.0, "motion": 2.0, "flicker": 0.1, "frame0_iou": 0.5,
                             "seconds": 1.0, "backbone": "tiny"})  # fmt: skip
    summary = summarize(rows, methods, FAST)
    md = to_markdown(summary, "", FAST)
    s2v = summary[1]["vs"]["s2v"]
    assert s2v["n"] == 11 and s2v["excludes_zero"] and math.isclose(s2v["diff"], -0.15, abs_tol=1e-9)
    assert summary[0]["s2v_lo"] < summary[0]["s2v_mean"] < summary[0]["s2v_hi"]
    assert "Paired difference from FlipSketch (full)" in md and "| n paired |" in md
    line = next(x for x in md.splitlines() if x.startswith("| T2V | -0.150"))
    assert line.endswith("| 11 |") and "* |" in line
    assert f"| FlipSketch | {summary[0]['s2v_mean']:.3f} [{summary[0]['s2v_lo']:.3f}" in md
