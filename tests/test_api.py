"""The diffusers-shaped Python API (flipsketch.api.FlipSketchPipeline): the same frames as the
command line and the sampler core for the same seed, the model's own sampler preset as the default,
every sampler knob a keyword, and a missing model as one line."""

from __future__ import annotations

import inspect
from dataclasses import fields

import numpy as np
import pytest
import torch
from PIL import Image

from flipsketch.api import FlipSketchPipeline, sampler_preset
from flipsketch.config import SamplerConfig
from flipsketch.errors import MissingWeightsError, UserError

SMALL = dict(num_frames=3, num_inference_steps=2, align_iters=1)


@pytest.fixture(scope="module")
def tiny_pretrained():
    pipe = FlipSketchPipeline.from_pretrained("tiny_pretrained")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_api_and_cli_give_the_same_frames(tiny_pretrained, tmp_path, sketch_png):
    from flipsketch.animate import main as animate_main

    out = tmp_path / "cli"
    argv = [f"sketch={sketch_png}", "prompt=a ball bouncing", f"out={out}", "seeds=[3]", "device=cpu"]
    argv += [f"sampler.{k}={v}" for k, v in SMALL.items()]
    argv += ["progress=false", "output.formats=[png]", "output.binarize=false"]
    assert animate_main(argv) == 0  # model=tiny_pretrained and its preset sampler=tiny_world, as shipped
    cli = np.stack([np.asarray(Image.open(p)) for p in sorted((out / "seed3" / "frames").glob("*.png"))])

    api = tiny_pretrained(
        prompt="a ball bouncing",
        image=str(sketch_png),
        generator=torch.Generator().manual_seed(3),
        output_type="uint8",
        **SMALL,
    )
    assert api.seeds == [3] and api.frames.shape == (1, 3, 64, 64, 3)
    assert np.array_equal(api.frames[0], cli)

    # and the sampler core itself, called the old way with the same settings: the same bytes
    from flipsketch.pipeline import FlipSketchPipeline as SamplerCore

    cfg = tiny_pretrained.sampler_settings(**SMALL)
    core = SamplerCore(tiny_pretrained.flipsketch_components(), cfg)(
        str(sketch_png), "a ball bouncing", seeds=[3]
    )
    assert np.array_equal(core.frames, api.frames)
    assert cfg.guidance_scale == 5.0 and cfg.lambda_mode == "weight"  # conf/sampler/tiny_world.yaml


def test_flipbook_output_is_what_the_cli_writes(tiny_pretrained, tmp_path, sketch_png):
    """output_type="flipbook": the CLI's post-processed frames (Otsu strokes, 4x upsampled), byte for byte."""
    from flipsketch.animate import main as animate_main

    out = tmp_path / "cli"
    argv = [f"sketch={sketch_png}", "prompt=a ball bouncing", f"out={out}", "seeds=[4]", "device=cpu"]
    argv += [f"sampler.{k}={v}" for k, v in SMALL.items()] + ["progress=false", "output.formats=[png]"]
    assert animate_main(argv) == 0
    cli = [np.asarray(Image.open(p)) for p in sorted((out / "seed4" / "frames").glob("*.png"))]
    api = tiny_pretrained(
        prompt="a ball bouncing",
        image=str(sketch_png),
        generator=torch.Generator().manual_seed(4),
        output_type="flipbook",
        **SMALL,
    )
    frames = [np.asarray(f.convert("L")) for f in api.frames[0]]
    assert frames[0].shape == (256, 256) and set(np.unique(frames[0])) <= {0, 255}
    assert len(frames) == len(cli)
    assert all(np.array_equal(a, b if b.ndim == 2 else b[..., 0]) for a, b in zip(frames, cli, strict=True))


def test_generators_are_the_cli_seeds_and_output_types(tiny_pretrained, sketch_png):
    from flipsketch.pipeline import FlipSketchPipeline as SamplerCore

    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    out = tiny_pretrained(
        prompt="a cat", image=Image.open(sketch_png), generator=gens, output_type="np", **SMALL
    )
    cfg = tiny_pretrained.sampler_settings(**SMALL)
    core = SamplerCore(tiny_pretrained.flipsketch_components(), cfg)(
        Image.open(sketch_png), "a cat", seeds=[0, 1]
    )
    assert out.seeds == [0, 1] and out.frames.dtype == np.float32 and out.frames.shape == (2, 3, 64, 64, 3)
    assert np.array_equal(np.rint(out.frames * 255).astype(np.uint8), core.frames)
    # one sample (a batch of one rounds differently from a batch of two): PIL frames and "pt" agree
    image = Image.open(sketch_png)
    pil = tiny_pretrained(prompt="a cat", image=image, generator=torch.Generator().manual_seed(1), **SMALL)
    assert pil.seeds == [1] and len(pil.frames) == 1 and len(pil.frames[0]) == 3
    assert pil.frames[0][0].size == (64, 64)
    (pt,) = tiny_pretrained(
        prompt="a cat",
        image=image,
        generator=torch.Generator().manual_seed(1),
        output_type="pt",
        return_dict=False,
        **SMALL,
    )
    assert pt.shape == (1, 3, 3, 64, 64) and pt.dtype == torch.float32
    as_uint8 = (pt[0].permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(as_uint8, np.stack([np.asarray(f) for f in pil.frames[0]]))


def test_defaults_come_from_the_models_preset(tiny_pretrained):
    assert tiny_pretrained.sampler_config == sampler_preset("tiny_world")
    assert tiny_pretrained.sampler_config != SamplerConfig()
    assert sampler_preset("flipsketch") == SamplerConfig()  # the paper's defaults
    tiny = FlipSketchPipeline.from_pretrained("tiny")  # no preset of its own: the paper's
    assert tiny.sampler_config == SamplerConfig()
    assert FlipSketchPipeline.from_pretrained("tiny", sampler="fast").sampler_config == sampler_preset("fast")
    cfg = tiny_pretrained.sampler_settings(lambda_=0.2, faithful={"reference_video": True})
    assert cfg.lambda_ == 0.2 and cfg.faithful.reference_video and cfg.num_inference_steps == 10
    with pytest.raises(UserError, match="did you mean lambda_"):
        tiny_pretrained.sampler_settings(lamda_=0.2)


def test_a_preset_leaves_the_callers_hydra_alone(tmp_path):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        outer = GlobalHydra.instance().hydra
        assert sampler_preset("tiny_world").num_inference_steps == 10
        assert GlobalHydra.instance().is_initialized() and GlobalHydra.instance().hydra is outer


def test_every_sampler_setting_is_a_keyword():
    params = inspect.signature(FlipSketchPipeline.__call__).parameters
    missing = [f.name for f in fields(SamplerConfig) if f.name not in params]
    assert not missing, (
        f"add these SamplerConfig fields as keywords of FlipSketchPipeline.__call__: {missing}"
    )
    assert all(params[f.name].default is None for f in fields(SamplerConfig))  # None: the preset's value


def test_it_is_a_diffusers_pipeline(tiny_pretrained):
    from diffusers import DiffusionPipeline

    assert isinstance(tiny_pretrained, DiffusionPipeline)
    assert set(tiny_pretrained.components) == {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}
    assert tiny_pretrained.device.type == "cpu" and tiny_pretrained.dtype == torch.float32
    assert hasattr(tiny_pretrained, "enable_model_cpu_offload")


def test_a_missing_model_is_one_line(tmp_path):
    with pytest.raises(MissingWeightsError) as exc:
        FlipSketchPipeline.from_pretrained(tmp_path / "no" / "such" / "folder")
    assert "no model at" in str(exc.value) and "\n" not in str(exc.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingWeightsError) as exc:
        FlipSketchPipeline.from_pretrained(tmp_path / "empty")
    assert "\n" not in str(exc.value)
    with pytest.raises(UserError, match="output_type"):
        FlipSketchPipeline.from_pretrained("tiny")(prompt="a cat", image=None, output_type="gif")
