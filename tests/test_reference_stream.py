"""The reference stream's trajectory, computed by hand on the tiny model, against the pipeline.

Default path (`sampler.faithful.reference_video` as SamplerConfig ships it) and the other mode, one
override away. Copies mode: each step's reference video is max(1, N - i) copies of the STEPPED frame 0
(not of the inverted latent z_T^ref); evolving mode: the stepped video itself, sliced. A mutation
test checks that building the copies from the un-stepped inverted latent is caught.
"""

import dataclasses

import pytest
import torch

import flipsketch.denoise as denoise_mod
from flipsketch.config import SamplerConfig
from flipsketch.pipeline import FlipSketchPipeline

from .conftest import draw_sketch

N, STEPS, TAU1, TAU2 = 4, 4, 2, 3  # the reference stream runs at every step: 4, 3, 2, 1 frames


@pytest.fixture(scope="module")
def pipe(fresh_tiny):
    return FlipSketchPipeline(fresh_tiny())  # its calls install processors: a model of its own


def config(**over) -> SamplerConfig:
    base = {"num_frames": N, "num_inference_steps": STEPS, "tau1": TAU1, "tau2": TAU2, "align_iters": 2}
    return SamplerConfig.from_dict({**base, **over})


def by_hand(pipe: FlipSketchPipeline, z_ref: torch.Tensor, evolving: bool) -> torch.Tensor:
    """The reference stream's frame 0 after its last step, written from docs/METHOD.md section 3."""
    c = pipe.c
    empty = pipe.encode_prompt([""])
    sched = type(c.scheduler).from_config(c.scheduler.config)
    sched.set_timesteps(STEPS)
    r, video = z_ref, z_ref.expand(-1, -1, N, -1, -1)
    with torch.no_grad():
        for i, t in enumerate(sched.timesteps):
            frames = max(1, N - i)
            video = video[:, :, :frames] if evolving else r.expand(-1, -1, frames, -1, -1)
            eps = c.unet(video, t, encoder_hidden_states=empty).sample
            video = sched.step(eps, t, video).prev_sample
            r = video[:, :, :1]
    return r


@pytest.mark.parametrize("evolving", [None, False, True], ids=["default", "copies", "evolving"])
def test_reference_stream_is_stepped_as_written(pipe, evolving):
    over = {} if evolving is None else {"faithful": {"reference_video": evolving}}
    cfg = config(**over)
    out = pipe(draw_sketch(64), "a ball bouncing", seeds=[0], config=cfg, output_type="latent")
    expected = by_hand(pipe, out.reference_latent, cfg.faithful.reference_video)
    assert float((out.reference_stream_latent - expected).abs().max()) < 1e-4


def test_copies_from_the_unstepped_latent_are_caught(pipe, monkeypatch):
    """Mutation: every step's copies built from z_T^ref instead of the stepped frame 0."""
    sketch, prompt = draw_sketch(64), "a ball bouncing"
    cfg = config(faithful={"reference_video": False})
    good = pipe(sketch, prompt, seeds=[0], config=cfg)
    inverted = good.reference_latent

    @dataclasses.dataclass
    class Unstepped(denoise_mod.ReferenceStep):
        def __post_init__(self):
            self.video = inverted.expand(-1, -1, self.video.shape[2], -1, -1)

    monkeypatch.setattr(denoise_mod, "ReferenceStep", Unstepped)
    bad = pipe(sketch, prompt, seeds=[0], config=cfg)
    expected = by_hand(pipe, inverted, evolving=False)
    assert float((bad.reference_stream_latent - expected).abs().max()) > 1e-2  # the check above fails
    assert float((bad.latents - good.latents).abs().max()) > 1e-2  # and the output changes
