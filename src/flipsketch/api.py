"""The Python API, shaped like a diffusers pipeline.

    >>> import torch
    >>> from flipsketch.api import FlipSketchPipeline
    >>> pipe = FlipSketchPipeline.from_pretrained("tiny_pretrained")  # or a folder, or a hub id
    >>> out = pipe(prompt="a cat jumping", image="cat.png", generator=torch.Generator().manual_seed(0))
    >>> frames = out.frames[0]  # the first sample's frames, as PIL images (output_type="pil")

`FlipSketchPipeline` subclasses diffusers' `DiffusionPipeline`: its five components (tokenizer, text
encoder, VAE, 3D UNet, DDIM scheduler) are registered modules, so `pipe.to("cuda")`,
`pipe.to(dtype=torch.float16)`, `pipe.components`, `pipe.enable_model_cpu_offload()` and
`pipe.set_progress_bar_config(disable=True)` work as on any diffusers pipeline. A call runs the
sampler core, `flipsketch.pipeline.FlipSketchPipeline`, unchanged: flipsketch-animate, the web app
and flipsketch-eval sample through this class, so the frames are the same bytes whichever way a
seed is sampled.

Sampler settings (docs/install.md). Every field of `flipsketch.config.SamplerConfig` is a keyword
of `__call__`; a keyword left at None takes the pipeline's sampler preset, `pipe.sampler_config`.
`from_pretrained` chooses that preset the way the command line does: the model config's
`default_sampler` (conf/model/<name>.yaml; `tiny_pretrained` -> conf/sampler/tiny_world.yaml), else
conf/sampler/flipsketch.yaml, which is the paper's defaults (`SamplerConfig()`: 25 steps, guidance 9,
lambda 0.5, tau1 10 / tau2 15 of 25, alignment 10 x lr 1e-3, 10 frames). `sampler=` picks another
preset by name, or passes a whole `SamplerConfig`.

Seeds: sample k's noise is drawn from `generator` (a list: one per sample) on the CPU generator's
stream, exactly as the command line's `seeds=[s]` draws it from `torch.Generator().manual_seed(s)`;
so `generator=torch.Generator().manual_seed(s)` gives the command line's frames for seed s.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from PIL import Image

from .config import FaithfulSwitches, SamplerConfig
from .errors import MissingWeightsError, UserError
from .models.components import Components
from .resources import CONF_DIR

OUTPUT_TYPES = ("pil", "np", "pt", "uint8", "latent", "flipbook")
PAPER_PRESET = "flipsketch"  # conf/sampler/flipsketch.yaml: SamplerConfig's defaults, the paper's


@dataclass
class FlipSketchPipelineOutput(BaseOutput):
    """`frames`: one entry per sample, as `output_type` asks: "pil" a list of PIL images per sample;
    "np" float32 (samples, F, H, W, 3) in [0, 1] (diffusers' convention, e.g. for
    `diffusers.utils.export_to_video(out.frames[0])`); "pt" float32 (samples, F, 3, H, W) in [0, 1];
    "uint8" the (samples, F, H, W, 3) uint8 array the command line writes; "latent" the final
    latents (samples, 4, F, h, w). `seeds`: each sample's seed (its generator's initial seed)."""

    frames: Any
    seeds: list[int]
    latents: torch.Tensor | None = None
    stats: dict | None = None


# ----------------------------------------------------------------------------- sampler presets
def sampler_preset(name: str) -> SamplerConfig:
    """conf/sampler/<name>.yaml as the command line composes it (e.g. `sampler=tiny_world`)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    from .config import register_configs

    options = sorted(p.stem for p in (CONF_DIR / "sampler").glob("*.yaml"))
    if not isinstance(name, str) or name not in options:
        raise UserError(f"unknown sampler preset {name!r}; choose one of {', '.join(options)}")
    register_configs()
    gh = GlobalHydra.instance()
    outer = gh.hydra if gh.is_initialized() else None  # e.g. called inside the user's own @hydra.main
    gh.clear()  # (Hydra's initialize context swaps the singleton: look it up again below)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="animate", overrides=[f"sampler={name}"])
    except HydraException as exc:
        raise UserError(f"sampler preset {name}: {' '.join(str(exc).split())[:200]}") from None
    finally:
        GlobalHydra.instance().clear()
        if outer is not None:
            GlobalHydra.instance().initialize(outer)  # their Hydra state as it was
    return SamplerConfig.from_dict(OmegaConf.to_container(cfg.sampler, resolve=True))


def model_sampler_preset(model_name: str) -> str:
    """The preset the command line runs `model=<model_name>` with: its config's `default_sampler`."""
    from omegaconf import OmegaConf

    path = CONF_DIR / "model" / f"{model_name}.yaml"
    default = OmegaConf.load(path).get("default_sampler") if path.is_file() else None
    return str(default) if default else PAPER_PRESET


def _is_tiny_pretrained_folder(folder: Path) -> bool:
    """A folder written by `make tiny-world` (the shipped model's layout): its sketch LoRA beside it."""
    from .models.lora import LORA_FILENAME

    return (folder / "unet").is_dir() and (folder / "lora" / LORA_FILENAME).is_file()


def _sampler_of(sampler: str | SamplerConfig | dict | None, default_preset: str) -> SamplerConfig:
    if sampler is None:
        return sampler_preset(default_preset)
    if isinstance(sampler, str):
        return sampler_preset(sampler)
    if isinstance(sampler, SamplerConfig):
        sampler.validate()
        return sampler
    if isinstance(sampler, dict):
        return SamplerConfig.from_dict(sampler)
    raise UserError(f"sampler must be a preset name, a SamplerConfig or a dict, got {type(sampler).__name__}")


# ----------------------------------------------------------------------------- the pipeline
class FlipSketchPipeline(DiffusionPipeline):
    """Sketch + prompt -> flip-book animation frames (see the module docstring)."""

    model_cpu_offload_seq = "text_encoder->unet->vae"

    def __init__(
        self,
        unet,
        vae,
        text_encoder,
        tokenizer,
        scheduler,
        resolution: int = 64,
        sampler: SamplerConfig | str | dict | None = None,
        model_name: str = "custom",
        model_source: str = "",
        model_info: dict | None = None,
    ):
        super().__init__()
        self.register_modules(
            unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler
        )
        self.resolution = int(resolution)
        self.sampler_config = _sampler_of(sampler, PAPER_PRESET)
        self.model_name, self.model_source = model_name, model_source
        self.model_info = dict(model_info or {})
        self._device_override: torch.device | None = None
        self.sketch_cache = None  # a pipeline.SketchCache shared by every call (from_components(reuse=True))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_components(
        cls,
        components: Components,
        sampler: SamplerConfig | str | dict | None = None,
        device=None,
        reuse: bool = False,
    ) -> FlipSketchPipeline:
        """The pipeline over a model built by `flipsketch.models.build_model` (its modules are
        shared, not copied). `device`: where latents live when the modules are split between devices
        (the command line's cpu_offload); None: the modules' own device. `reuse`: keep a SketchCache
        (prompt embeddings, inversion, reference stream once per sketch; bit-identical outputs) for
        many calls on frozen weights, as evaluation makes."""
        pipe = cls(
            components.unet,
            components.vae,
            components.text_encoder,
            components.tokenizer,
            components.scheduler,
            resolution=components.resolution,
            sampler=sampler if sampler is not None else model_sampler_preset(components.name),
            model_name=components.name,
            model_source=components.source,
            model_info=components.info,
        )
        pipe._device_override = torch.device(device) if device is not None else None
        if reuse:
            from .pipeline import SketchCache

            pipe.sketch_cache = SketchCache()
        return pipe

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike = "tiny_pretrained",
        *,
        torch_dtype: torch.dtype | None = None,
        lora: str | os.PathLike | None = None,
        sampler: SamplerConfig | str | dict | None = None,
        **model_kwargs,
    ) -> FlipSketchPipeline:
        """Load a model by registry name, local folder or hub id.

        * a registered name: `tiny_pretrained` (the shipped model, its sketch LoRA fused), `tiny`,
          `modelscope` (ali-vilab/text-to-video-ms-1.7b), `modelscope_random`, `flipsketch_ckpt`;
          `model_kwargs` are that model's settings (conf/model/<name>.yaml, e.g. `path=`);
        * a folder: one written by `make tiny-world` (with `lora/`, loaded as `tiny_pretrained`) or
          any diffusers text-to-video folder (the authors' merged checkpoint-2500, ModelScope);
        * `owner/name`: a hub id, loaded as ModelScope's layout (downloads unless HF_HUB_OFFLINE=1).

        `lora`: a `pytorch_lora_weights.safetensors` (or its folder) loaded on top, as `model.lora=`.
        `torch_dtype`: the components' dtype (default float32). `sampler`: a preset name or a
        `SamplerConfig`; None takes the model's own preset (tiny_pretrained: tiny_world; the paper's
        models: flipsketch, the paper's defaults). Nothing found is one `MissingWeightsError` line.
        """
        from .models.loaders import looks_like_hub_id
        from .models.registry import MODEL_REGISTRY, build_model

        ref = os.fspath(pretrained_model_name_or_path)
        kwargs = dict(model_kwargs)
        if ref in MODEL_REGISTRY:
            name = ref
        else:
            folder = Path(ref).expanduser()
            if folder.is_dir():
                name = "tiny_pretrained" if _is_tiny_pretrained_folder(folder) else "modelscope"
                kwargs["path"] = str(folder)
            elif looks_like_hub_id(ref):
                name, kwargs["path"] = "modelscope", ref
            else:
                raise MissingWeightsError(
                    f"no model at {folder}: give a registered name ({', '.join(sorted(MODEL_REGISTRY))}), "
                    "a model folder or a hub id (owner/name)"
                )
        if torch_dtype is not None and name in ("modelscope", "flipsketch_ckpt") and "dtype" not in kwargs:
            kwargs["dtype"] = str(torch_dtype).replace("torch.", "")
        components = build_model(name, lora=None if lora is None else os.fspath(lora), **kwargs)
        if torch_dtype is not None:
            components.to(dtype=torch_dtype)
        return cls.from_components(components, sampler if sampler is not None else model_sampler_preset(name))

    def to(self, *args, **kwargs):
        self._device_override = None  # the modules say where they are again
        return super().to(*args, **kwargs)

    @property
    def sampling_device(self) -> torch.device:
        """Where latents and embeddings live: the execution device (GPU under model CPU offload)."""
        return self._device_override if self._device_override is not None else self._execution_device

    def flipsketch_components(self) -> Components:
        """The registered modules as the sampler core's `Components` (shared, not copied)."""
        return Components(
            tokenizer=self.tokenizer,
            text_encoder=self.text_encoder,
            vae=self.vae,
            unet=self.unet,
            scheduler=self.scheduler,
            name=self.model_name,
            source=self.model_source,
            resolution=self.resolution,
            info=self.model_info,
        )

    def describe(self) -> dict:
        return self.flipsketch_components().describe()

    # ------------------------------------------------------------------ sampling
    def sampler_settings(
        self, sampler: SamplerConfig | str | dict | None = None, **settings
    ) -> SamplerConfig:
        """The settings a call runs with: `sampler` (default `self.sampler_config`) with every
        keyword that is not None applied; `faithful` may be a dict of switches."""
        import copy

        base = self.sampler_config if sampler is None else _sampler_of(sampler, PAPER_PRESET)
        d = copy.deepcopy(base).to_dict()
        known = {f.name for f in fields(SamplerConfig)}
        unknown = sorted(set(settings) - known)
        if unknown:
            from difflib import get_close_matches

            close = get_close_matches(unknown[0], sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UserError(f"unknown sampler setting {unknown[0]!r}{hint}")
        for key, value in settings.items():
            if value is None:
                continue
            if key == "faithful":
                value = vars(value) if isinstance(value, FaithfulSwitches) else dict(value)
                d["faithful"] = {**d["faithful"], **value}
            else:
                d[key] = value
        return SamplerConfig.from_dict(d)

    def __call__(  # no torch.no_grad(): the frame alignment optimises latents (the core scopes grads)
        self,
        prompt: str,
        image: str | os.PathLike | Image.Image | np.ndarray | None = None,
        num_frames: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        negative_prompt: str | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_videos_per_prompt: int | None = None,
        lambda_: float | None = None,
        tau1: int | None = None,
        tau2: int | None = None,
        lambda_denominator: float | None = None,
        lambda_mode: str | None = None,
        compose_spatial: bool | None = None,
        compose_temporal: bool | None = None,
        reference_decay: bool | None = None,
        align: bool | None = None,
        align_iters: int | None = None,
        align_lr: float | None = None,
        align_checkpointing: bool | None = None,
        reference_frame: bool | None = None,
        vae_decode_chunk: int | None = None,
        output_reference_frame0: bool | None = None,
        batch_streams: bool | None = None,
        faithful: FaithfulSwitches | dict | None = None,
        sampler: SamplerConfig | str | dict | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> FlipSketchPipelineOutput | tuple:
        """Animate `image` (a sketch: path, PIL image or HxWx3 uint8 array) as `prompt` says.

        Every sampler keyword left at None takes `self.sampler_config` (see the module docstring;
        the paper's values: num_frames 10, num_inference_steps 25, guidance_scale 9, lambda_ 0.5,
        tau1/tau2 None = 10 and 15 of 25 steps scaled, lambda_denominator 50, lambda_mode "logit",
        compose_spatial/compose_temporal/reference_decay/align True, align_iters 10, align_lr 1e-3,
        align_checkpointing True, reference_frame True (False: plain text-to-video, no image),
        vae_decode_chunk 8, output_reference_frame0 False, batch_streams False, faithful all off).
        `generator`: one per sample (a list) or one for all; None draws a random seed per sample
        (reported in `out.seeds`). `num_videos_per_prompt`: samples (default: len(generator) or 1).
        `latents`: starting noise (samples, 4, F, h, w) instead of the generator's; frame 0 is the
        inverted sketch either way. `output_type`: "pil" | "np" | "pt" | "uint8" | "latent" (the raw
        decoded frames) or "flipbook": the frames flipsketch-animate writes (grey + Otsu to black strokes
        on white, thresholded after a 4x upsampling: 256 px for the 64 px model), as PIL images.
        `out.frames[k]` is sample k's list of frames.
        `on_progress(fraction, label)`: called as the denoising loop advances (the web app's bar).
        """
        from .pipeline import FlipSketchPipeline as SamplerCore

        if output_type not in OUTPUT_TYPES:
            raise UserError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")
        cfg = self.sampler_settings(
            sampler,
            num_frames=num_frames,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            negative_prompt=negative_prompt,
            lambda_=lambda_,
            tau1=tau1,
            tau2=tau2,
            lambda_denominator=lambda_denominator,
            lambda_mode=lambda_mode,
            compose_spatial=compose_spatial,
            compose_temporal=compose_temporal,
            reference_decay=reference_decay,
            align=align,
            align_iters=align_iters,
            align_lr=align_lr,
            align_checkpointing=align_checkpointing,
            reference_frame=reference_frame,
            vae_decode_chunk=vae_decode_chunk,
            output_reference_frame0=output_reference_frame0,
            batch_streams=batch_streams,
            faithful=faithful,
        )
        gens = self._generators(generator, num_videos_per_prompt)
        seeds = [int(g.initial_seed()) for g in gens]
        if latents is None:
            h = w = self.resolution // 2 ** (len(self.vae.config.block_out_channels) - 1)
            shape = (1, 4, cfg.num_frames, h, w)  # the sampler core's own draw for seeds=[s]
            latents = torch.cat(
                [torch.randn(shape, generator=g, dtype=torch.float32, device=g.device) for g in gens]
            )
            latents = latents.cpu()
        if isinstance(image, np.ndarray):
            image = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
        progress = not bool(getattr(self, "_progress_bar_config", {}).get("disable", False))
        core = SamplerCore(self.flipsketch_components(), cfg, device=self.sampling_device)
        core.cache = self.sketch_cache
        res = core(
            image,
            prompt,
            seeds=seeds,
            config=cfg,
            latents=latents,
            progress=progress,
            on_progress=on_progress,
            output_type="latent" if output_type == "latent" else "np",
        )
        self.maybe_free_model_hooks()
        frames = self._frames(res, output_type)
        if not return_dict:
            return (frames,)
        stats = dict(res.stats)
        stats["reference_latent"] = res.reference_latent
        stats["sketch"] = res.sketch
        return FlipSketchPipelineOutput(frames=frames, seeds=res.seeds, latents=res.latents, stats=stats)

    @staticmethod
    def _generators(generator, count: int | None) -> list[torch.Generator]:
        if isinstance(generator, list | tuple):
            if count is not None and count != len(generator):
                raise UserError(f"got {len(generator)} generators for num_videos_per_prompt={count}")
            if not generator or not all(isinstance(g, torch.Generator) for g in generator):
                raise UserError("generator must be a torch.Generator or a non-empty list of them")
            return list(generator)
        count = 1 if count is None else int(count)
        if count < 1:
            raise UserError(f"num_videos_per_prompt must be >= 1, got {count}")
        if generator is None:  # a random seed per sample, reported in out.seeds
            seeds = torch.randint(0, 2**31 - 1, (count,)).tolist()
            return [torch.Generator().manual_seed(int(s)) for s in seeds]
        if not isinstance(generator, torch.Generator):
            raise UserError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return [generator] * count  # one stream: each sample draws the next noise from it

    @staticmethod
    def _frames(res, output_type: str):
        if output_type == "latent":
            return res.latents
        frames = res.frames  # (samples, F, H, W, 3) uint8
        if output_type == "uint8":
            return frames
        if output_type == "flipbook":  # what the CLI writes (conf/output/default.yaml's post-processing)
            from .ink import binarize
            from .outputs import BINARIZE_UPSCALE

            return [[Image.fromarray(f) for f in binarize(sample, BINARIZE_UPSCALE)] for sample in frames]
        if output_type == "pil":
            return [[Image.fromarray(f) for f in sample] for sample in frames]
        as_float = frames.astype(np.float32) / 255.0
        if output_type == "np":
            return as_float
        return torch.from_numpy(as_float).permute(0, 1, 4, 2, 3).contiguous()  # "pt": (samples, F, 3, H, W)
