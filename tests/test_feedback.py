"""Runs that say what they are doing: the model's default sampler preset, the alignment-aware
progress bar of the sampler, training's loss lines, checkpoints on a time interval."""

from __future__ import annotations

import datetime

import pytest

from flipsketch.cli import compose_config, with_model_sampler
from flipsketch.training.task import compose_train


@pytest.mark.parametrize(
    ("config", "argv", "steps"),
    [
        ("animate", [], 10),  # model=tiny_pretrained: sampler=tiny_world
        ("animate", ["model=modelscope"], 25),  # the paper's schedule
        ("animate", ["model=flipsketch_ckpt"], 25),
        ("animate", ["sampler=fast"], 25),  # a sampler the user picks wins
        ("animate", ["sampler=flipsketch"], 25),
        ("eval", ["model=tiny_pretrained"], 10),
        ("eval", ["experiment=tiny_table1"], None),  # an experiment's own sampler settings stay
    ],
)
def test_the_model_names_its_default_sampler(config, argv, steps):
    cfg = compose_config(config, with_model_sampler(config, argv))
    if steps is None:
        assert with_model_sampler(config, argv) == argv
    else:
        assert cfg.sampler.num_inference_steps == steps


def test_the_tiny_schedule_changes_lambda_and_guidance_and_the_paper_keeps_the_official_form():
    tiny = compose_config("animate", with_model_sampler("animate", [])).sampler
    paper = compose_config("animate", ["sampler=flipsketch"]).sampler
    assert (tiny.lambda_mode, tiny.lambda_denominator, tiny.guidance_scale) == ("weight", 5.0, 5.0)
    assert (tiny.align_iters, tiny.align_lr) == (5, 0.1)
    assert (paper.lambda_mode, paper.lambda_denominator, paper.guidance_scale) == ("logit", 50.0, 9.0)
    official = ["sampler.lambda_mode=logit", "sampler.lambda_denominator=50"]
    back = compose_config("animate", with_model_sampler("animate", official)).sampler
    assert (back.lambda_mode, back.lambda_denominator) == ("logit", 50.0)


def test_the_python_api_honours_it_too():
    from flipsketch.evaluation import compose_eval

    assert compose_eval(["model=tiny_pretrained"]).sampler.num_inference_steps == 10
    assert compose_eval(["model=tiny_pretrained", "sampler=flipsketch"]).sampler.num_inference_steps == 25


def test_a_sweep_over_models_keeps_the_primary_default():
    argv = ["-m", "model=tiny_pretrained,modelscope"]
    assert with_model_sampler("eval", argv) == argv
    assert with_model_sampler("eval", ["-m", "sampler.lambda_=0,1", "model=tiny_pretrained"])[-1] == (
        "sampler=tiny_world"
    )


def test_progress_counts_the_alignment_iterations(tiny, monkeypatch):
    """The bar's planned work equals the work done, so its ETA is a rate over like units."""
    from flipsketch.config import SamplerConfig
    from flipsketch.pipeline import FlipSketchPipeline
    from flipsketch.progress import Progress
    from tests.conftest import draw_sketch

    seen = []
    monkeypatch.setattr(Progress, "close", lambda self: seen.append((self.done, self.total, self.label)))
    cfg = SamplerConfig(num_frames=3, num_inference_steps=3, tau1=2, tau2=1, align_iters=2)
    pipe = FlipSketchPipeline(tiny, cfg)
    pipe(draw_sketch(64), "a ball", progress=True)
    done, total, label = seen[0]
    assert done == total > 0 and label == "step 3/3"


def test_training_checkpoints_on_time_too(tmp_path):
    from flipsketch.training.builders import instantiate_group

    for argv in ([], ["experiment=tiny_world_lora"]):
        cfg = compose_train(argv, out_dir=tmp_path)
        node = cfg.callbacks.model_checkpoint_time
        assert node.train_time_interval is not None and "progress_lines" in cfg.callbacks
    assert cfg.callbacks.model_checkpoint_time.train_time_interval.minutes == 2
    cbs = instantiate_group(cfg.callbacks, "callbacks")
    times = [c._train_time_interval for c in cbs if getattr(c, "_train_time_interval", None)]
    assert times == [datetime.timedelta(minutes=2)]


def test_progress_lines_print_loss(capsys):
    from types import SimpleNamespace

    import torch

    from flipsketch.training.feedback import ProgressLines

    cb = ProgressLines(every_n_steps=2)
    trainer = SimpleNamespace(
        is_global_zero=True,
        progress_bar_callback=None,
        global_step=0,
        max_steps=4,
        log_every_n_steps=10,
        checkpoint_callbacks=[],
        callback_metrics={"train/loss": torch.tensor(0.5), "train/lr": torch.tensor(1e-3)},
        sanity_checking=False,
    )
    cb.on_train_start(trainer, SimpleNamespace(lora_params=lambda: [torch.zeros(3)]))
    for step in (1, 2, 3, 4):
        trainer.global_step = step
        cb.on_train_batch_end(trainer, None, None, None, step)
    err = capsys.readouterr().err
    assert "3 LoRA parameters, 4 steps" in err
    assert "step 2/4  loss 0.5  lr 0.001" in err and "ETA" in err and "step 3/4" not in err
