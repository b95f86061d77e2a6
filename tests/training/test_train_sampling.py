"""Validation videos: sampled with FlipSketchPipeline, written, model left as it was."""

from __future__ import annotations

import numpy as np
from PIL import Image

from flipsketch.training.builders import build_run
from flipsketch.training.sampling import SampleVideos
from flipsketch.training.task import compose_train
from tests.helpers import fast_overrides


def test_validation_videos_leave_the_training_model_untouched(dataset, tmp_path):
    overrides = fast_overrides(dataset, steps=2, videos=True) + [
        "trainer.val_check_interval=2",
        "module.activation_checkpointing=true",
        "callbacks.sample_videos.sampler.align=true",  # backpropagates to the latents inside validation
        "callbacks.sample_videos.formats=[gif]",
    ]
    run = build_run(compose_train(overrides, out_dir=tmp_path))
    unet = run.module.unet
    processors = unet.attn_processors
    run.trainer.fit(run.module, datamodule=run.datamodule)
    videos = next(c for c in run.callbacks if isinstance(c, SampleVideos)).written
    assert len(videos) == 1 and videos[0].parent.name == "step_000002"
    gif = Image.open(videos[0])
    assert gif.n_frames == 4 and gif.size == (64, 64)
    after = unet.attn_processors
    assert all(after[k] is processors[k] for k in processors)  # composition processors removed again
    assert all(p.requires_grad for p in run.module.lora_params())
    assert all(getattr(b, "_flipsketch_ckpt_forward", None) is not None for b in unet.down_blocks)


def test_plain_text_to_video_and_fixed_prompts(dataset, tmp_path):
    cb = SampleVideos(
        tmp_path,
        num_samples=1,
        prompts=["a star spinning", "a fish swimming"],
        num_inference_steps=2,
        num_frames=3,
        sampler={"reference_frame": False},
        formats=("gif",),
    )
    assert cb.config.resolved_taus() == (1, 1)  # the paper's 10/15 of 25 steps, scaled to 2

    class DM:
        def val_examples(self, n):
            return [(Image.fromarray(np.full((64, 64, 3), 255, np.uint8)), "caption")] * n

    class T:
        datamodule = DM()

    pairs = cb.examples(T())
    assert pairs == [(None, "a star spinning"), (None, "a fish swimming")]
