"""Sweeps that summarise themselves: the combined table, the best job, the optional plugins."""

from __future__ import annotations

import importlib.util

import pytest

from flipsketch.cli import compose_config
from flipsketch.sweeps import write_job_result, write_summary


def installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_the_combined_table_names_the_best_job(tmp_path):
    for job, (lr, rank, loss) in enumerate([("1e-4", 4, 0.9), ("1e-3", 4, 0.5), ("1e-4", 8, 0.7)]):
        overrides = ["experiment=tiny_smoke", f"module.optimizer.lr={lr}", f"module.lora.rank={rank}"]
        write_job_result(
            tmp_path / str(job), overrides, "val/loss", loss, {"val/loss": loss, "train/loss": 1.0}
        )
    (tmp_path / "3").mkdir()  # a failed job: no result, no row
    out = write_summary(tmp_path, "val/loss", "min")
    lines = out["table"].splitlines()
    assert "| job | module.optimizer.lr | module.lora.rank | val/loss | train/loss |" in lines
    assert "| 1 **(best)** | 1e-3 | 4 | 0.5 | 1 |" in lines
    assert lines[-1] == (
        "Best job: 1 (module.optimizer.lr=1e-3 module.lora.rank=4): val/loss = 0.5 (min); "
        "one number per job, no interval: not tested against the runner-up"
    )
    assert (tmp_path / "results.csv").read_text().splitlines()[0] == (
        "job,module.optimizer.lr,module.lora.rank,val/loss,train/loss"
    )
    assert write_summary(tmp_path, "val/loss", "max")["best"]["job"] == "0"


def test_nothing_is_written_when_no_job_finished(tmp_path):
    (tmp_path / "0").mkdir()
    assert write_summary(tmp_path, "val/loss") is None and not (tmp_path / "results.md").exists()


def test_hparams_search_is_summarised():
    cfg = compose_config("train", ["hparams_search=lora_lr"], return_hydra_config=True)
    assert cfg.hydra.callbacks.sweep_summary._target_ == "flipsketch.sweeps.SweepSummary"
    assert cfg.optimized_metric == "val/loss" and cfg.optimized_mode == "min"


@pytest.mark.skipif(not installed("hydra_plugins.hydra_optuna_sweeper"), reason="pip install -e '.[sweep]'")
def test_optuna_search_composes():
    cfg = compose_config("train", ["hparams_search=lora_lr_optuna"], return_hydra_config=True)
    assert cfg.hydra.sweeper.direction == "minimize" and cfg.hydra.sweeper.n_trials > 0


@pytest.mark.skipif(
    not installed("hydra_plugins.hydra_submitit_launcher"), reason="pip install -e '.[sweep]'"
)
@pytest.mark.parametrize("config", ["train", "eval"])
def test_submitit_launchers_compose(config):
    for launcher in ("submitit_slurm", "submitit_local", "slurm_gpu"):
        cfg = compose_config(config, [f"hydra/launcher={launcher}"], return_hydra_config=True)
        assert "submitit" in cfg.hydra.launcher._target_


def test_a_one_value_sweep_is_plotted(tmp_path):
    from PIL import Image

    for job, lam in enumerate((0.0, 0.5, 1.0)):
        write_job_result(
            tmp_path / str(job), [f"sampler.lambda_={lam}"], "full/s2v", lam / 2, {"full/s2v": lam / 2}
        )
    out = write_summary(tmp_path, "full/s2v", "max")
    assert out["best"]["job"] == "2" and "Plot: sweep.png" in out["table"]
    assert Image.open(tmp_path / "sweep.png").size == (560, 380)


@pytest.mark.skipif(
    not installed("hydra_plugins.hydra_submitit_launcher"), reason="pip install -e '.[sweep]'"
)
def test_the_project_slurm_launcher_asks_for_one_gpu(monkeypatch):
    monkeypatch.setenv("SLURM_PARTITION", "gpu")
    cfg = compose_config("eval", ["hydra/launcher=slurm_gpu"], return_hydra_config=True)
    assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.hydra.launcher.partition == "gpu"


def test_a_sampler_knob_sweep_draws_the_tradeoff(tmp_path):
    import numpy as np
    from PIL import Image

    for job, lam in enumerate((0.0, 0.5, 1.0)):
        metrics = {"full/s2v": 0.9 - 0.1 * lam, "full/motion": 0.5 + 2 * lam, "full/chamfer": 1.0 + 3 * lam}
        write_job_result(
            tmp_path / str(job), [f"sampler.lambda_={lam}"], "full/s2v", metrics["full/s2v"], metrics
        )
    out = write_summary(tmp_path, "full/s2v", "max")
    assert "![trade-off](tradeoff.png)" in out["table"] and "![full/s2v](sweep.png)" in out["table"]
    assert "Trade-off (full, one point per sampler.lambda_ value)" in out["table"]
    img = np.asarray(Image.open(tmp_path / "tradeoff.png").convert("RGB"))
    assert img.shape == (380, 920, 3)
    blue = np.all(img == (30, 90, 200), axis=-1)  # the points
    assert blue[:, :460].sum() > 100 and blue[:, 460:].sum() > 100  # one panel per closeness metric
    ys, xs = np.nonzero(blue[:, :420])  # Chamfer grows with motion here: the top point is the rightmost
    assert xs[ys == ys.min()].mean() > xs[ys == ys.max()].mean()


def test_no_tradeoff_without_one_sampler_knob(tmp_path):
    for job, (lr, rank) in enumerate([("1e-4", 4), ("1e-3", 8)]):
        metrics = {"full/s2v": 0.9, "full/motion": 0.5 + job, "full/chamfer": 1.0}
        write_job_result(
            tmp_path / str(job),
            [f"module.optimizer.lr={lr}", f"module.lora.rank={rank}"],
            "full/s2v",
            0.9,
            metrics,
        )
    assert "trade-off" not in write_summary(tmp_path, "full/s2v")["table"]
    assert not (tmp_path / "tradeoff.png").exists()


def _lambda_sweep(tmp_path, labels=None, scoring=None):
    for job, (lam, s2v) in enumerate([(0, 0.81), (0.25, 0.84), (0.5, 0.86), (0.75, 0.87), (1, 0.9)]):
        metrics = {"full/s2v": s2v, "full/motion": 2 - lam, "full/chamfer": 5 - 2 * lam}
        write_job_result(
            tmp_path / str(job), ["experiment=tiny_table1", f"sampler.lambda_={lam}"], "full/s2v", s2v,
            metrics, labels, scoring,
        )  # fmt: skip
    return write_summary(tmp_path, "full/s2v", "max")


def test_the_combined_table_names_the_scorer_and_the_policy(tmp_path):
    from flipsketch.eval import metric_labels, scoring_text

    out = {
        "metrics": {"full/s2v": 0.9, "full/t2v": 0.2, "full/chamfer": 3.0, "full/seconds": 1.0},
        "policy": {"postprocess": "binarize", "frames": 10, "include_frame0": False, "binarize_upscale": 1},
        "backbone": "open_clip:ViT-B-32/openai",
        "t2v_scorer": "xclip:microsoft/xclip-base-patch32",
    }
    labels = metric_labels(out)
    assert labels["full/s2v"] == "CLIP open_clip:ViT-B-32/openai; binarize 1x, 10 frames, frame 0 out"
    assert labels["full/t2v"].startswith("xclip:microsoft/xclip-base-patch32; binarize")
    assert "full/seconds" not in labels
    table = _lambda_sweep(tmp_path, labels, scoring_text(out))["table"]
    header = next(line for line in table.splitlines() if line.startswith("| job"))
    assert "| full/s2v (CLIP open_clip:ViT-B-32/openai; binarize 1x, 10 frames, frame 0 out) |" in header
    assert "Scoring: every method scored alike: grey + Otsu binarisation; 10 frames" in table


def _close_sweep(tmp_path):
    """S2V values 0.99710..0.99727 apart by less than the fourth decimal; motion by 1e-4, Chamfer by
    1e-5 (where matplotlib would write an offset: "1e-5+3.3" above ticks 0.0, 0.2, ...)."""
    from flipsketch.sweeps import collect, summary_table

    for job, (lam, s2v) in enumerate([(0, 0.997105), (0.5, 0.997265), (1, 0.9972)]):
        metrics = {"full/s2v": s2v, "full/motion": 0.01 + lam * 1e-4, "full/chamfer": 3.3 + lam * 1e-5}
        write_job_result(tmp_path / str(job), [f"sampler.lambda_={lam}"], "full/s2v", s2v, metrics)
    columns, rows, _ = summary_table(collect(tmp_path), "full/s2v", "max")
    return columns, rows


def _ticks(axis) -> list[str]:
    lo, hi = sorted(axis.get_view_interval())
    return [
        t.get_text() for t in axis.get_ticklabels() if lo <= t.get_position()[axis.axis_name == "y"] <= hi
    ]


def test_close_values_get_tick_labels_that_keep_them_apart_and_labels_inside(tmp_path):
    from flipsketch.sweeps import _sweep_figure, _tradeoff_figure

    columns, rows = _close_sweep(tmp_path)
    fig = _sweep_figure(columns, rows, "full/s2v")
    fig.canvas.draw()
    (ax,) = fig.axes
    assert fig.get_suptitle() == "full/s2v against sampler.lambda_"
    assert ax.get_xlabel() == "sampler.lambda_" and ax.get_title(loc="left") == "full/s2v"
    y = _ticks(ax.yaxis)
    assert len(y) >= 3 and len(set(y)) == len(y), y  # not all "0.9972"
    assert all(t.startswith("0.9971") or t.startswith("0.9972") for t in y), y  # no offset, no 1e-4
    assert not ax.yaxis.get_offset_text().get_text()
    assert len({len(t) for t in y}) == 1, y  # one number of decimals for all
    fig, method = _tradeoff_figure(columns, rows, "full/s2v")
    fig.canvas.draw()
    assert method == "full" and len(fig.axes) == 2
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            t = _ticks(axis)
            assert len(set(t)) == len(t) >= 3 and not axis.get_offset_text().get_text(), t
        assert all(t.startswith("3.3000") for t in _ticks(fig.axes[0].yaxis))
        box = ax.get_window_extent()
        labels = [t for t in ax.texts if t.get_text().startswith("lambda_=")]
        assert [t.get_text() for t in labels] == ["lambda_=0", "lambda_=0.5", "lambda_=1"]
        for t in labels:  # every point label inside its plot, the rightmost one turned to the left
            ext = t.get_window_extent()
            assert box.x0 <= ext.x0 and ext.x1 <= box.x1 and box.y0 <= ext.y0 and ext.y1 <= box.y1


def test_the_tradeoff_draws_one_point_per_value_in_each_panel(tmp_path):
    import numpy as np
    from PIL import Image
    from scipy import ndimage

    _lambda_sweep(tmp_path)  # 5 values of lambda_
    img = np.asarray(Image.open(tmp_path / "tradeoff.png").convert("RGB")).astype(int)
    assert img.shape == (380, 920, 3) and (img == 255).all(-1).mean() > 0.7  # white, not blank
    blue = np.all(img == (30, 90, 200), axis=-1)
    for panel in (blue[:, :460], blue[:, 460:]):
        spots, n = ndimage.label(panel)
        sizes = ndimage.sum(panel, spots, range(1, n + 1))
        assert n == 5 and (sizes > 15).all(), (n, sizes)
    joins = np.all(np.abs(img - (150, 170, 220)) <= 8, axis=-1)  # the thin line joining them
    assert joins[:, :460].sum() > 50 and joins[:, 460:].sum() > 50
    ink = img.sum(-1) < 300  # the title at the top left
    assert ink[:25, :200].sum() > 50


def test_the_sweep_line_rises_with_the_metric_and_nothing_leaves_the_picture(tmp_path):
    import numpy as np
    from PIL import Image

    _lambda_sweep(tmp_path)  # S2V grows with lambda_
    img = np.asarray(Image.open(tmp_path / "sweep.png").convert("RGB")).astype(int)
    blue = np.all(img == (30, 90, 200), axis=-1)
    ys, xs = np.nonzero(blue)
    assert blue.sum() > 300 and xs.max() - xs.min() > 300  # one line across the plot
    assert ys[xs < xs.min() + 10].mean() > ys[xs > xs.max() - 10].mean() + 100  # rising (y grows down)
    ink = img.sum(-1) < 300
    assert not ink[:, -3:].any() and not ink[-3:].any()  # labels and ticks kept inside the picture


def test_sweep_picture_has_its_title_spaced_and_ticks_on_both_axes(tmp_path):
    import numpy as np
    from PIL import Image

    _lambda_sweep(tmp_path)
    img = np.asarray(Image.open(tmp_path / "sweep.png").convert("RGB")).astype(int)
    # grid lines at the round ticks: several rows and columns of light grey inside the plot
    grid = np.abs(img - 235).sum(-1) == 0
    assert (grid.sum(1) > 200).sum() >= 3 and (grid.sum(0) > 100).sum() >= 3
    # the title "full/s2v against sampler.lambda_": its words are apart (two clear gaps of >= 3 px)
    ink = (img[:30].sum(-1) < 300).any(0)
    cols = np.flatnonzero(ink)
    gaps, run = 0, 0
    for c in range(cols[0], cols[-1] + 1):
        run = 0 if ink[c] else run + 1
        gaps += run == 3
    assert gaps >= 2, gaps


def _unit_sweep(tmp_path, shift: float, noise: float = 0.003):
    """Three λ jobs on the same 8 sketches x 3 seeds: a shared per-unit spread (0.016), the jobs
    apart by `shift` per λ step, plus per-job noise."""
    import numpy as np

    rng = np.random.default_rng(1)
    base = rng.normal(0.9, 0.016, size=24)
    for job, lam in enumerate((0.0, 0.5, 1.0)):
        s2v = {
            f"s{i // 3}/seed{i % 3}": float(b + shift * lam + rng.normal(0, noise))
            for i, b in enumerate(base)
        }
        mean = float(np.mean(list(s2v.values())))
        extra = {"units": {"full/s2v": s2v}, "intervals": {"full/s2v": [mean - 0.006, mean + 0.006]}}
        write_job_result(tmp_path / str(job), [f"sampler.lambda_={lam}"], "full/s2v", mean,
                         {"full/s2v": mean}, {"full/s2v": "CLIP tiny-scorer"}, None, extra)  # fmt: skip
    return write_summary(tmp_path, "full/s2v", "max")


def test_a_sweep_inside_the_noise_crowns_no_best_and_says_how_many_seeds(tmp_path):
    out = _unit_sweep(tmp_path, shift=0.0)
    assert out["best"] is None and "**(best)**" not in out["table"]
    assert "No clear best: job" in out["table"] and "includes 0" in out["table"]
    need = out["verdict"]["n_needed"]
    assert need is not None and need > 24 and "((1.96 + 0.84) sd / |diff|)^2 = " in out["table"]
    assert "0.9" in out["table"].split("| 0 | 0.0 | ")[1].split("[")[0]  # mean [lo, hi] cells


def test_a_sweep_with_a_real_separation_names_the_best(tmp_path):
    out = _unit_sweep(tmp_path, shift=0.02)
    assert out["best"]["job"] == "2" and out["verdict"]["how"] == "paired"
    assert "| 2 **(best)** |" in out["table"] and "the 95% interval excludes 0" in out["table"]
