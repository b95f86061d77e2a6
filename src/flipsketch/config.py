"""Sampler settings: every knob of the paper with its default, and the `faithful` switches; and
the settings flipsketch-train checks (`RunSettings`, `DataSettings`, `TrainerSettings`,
`ModuleSettings` with `LoraSettings`) with the one list of trainer precisions, `PRECISIONS`.

The defaults are written here once. `register_configs()` stores them in Hydra's ConfigStore as
`sampler_defaults`, which conf/sampler/flipsketch.yaml starts from (so the YAML holds only comments
and what differs); the composing code (flipsketch.cli.compose) calls it before every composition. The
node is stored untyped so that a mistyped value still reaches `SamplerConfig.from_dict` and its
one-line message. `module.lora` starts from `lora_defaults` the same way. Every class is checked by
`typed_settings`. Foundation layer: imports only errors and checks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from .checks import MAX_SEED
from .errors import UserError


@dataclass
class FaithfulSwitches:
    """Each switch restores one behaviour of the authors' code (docs/METHOD.md). All off = ours."""

    input_range_01: bool = False  # feed the VAE pixels in [0,1] (a bug: training used [-1,1])
    posterior_sample_avg: bool = False  # 5 unseeded posterior samples, inverted, averaged
    squash_aspect: bool = False  # squash non-square sketches instead of fitting on white
    align_bf16: bool = False  # optimise bf16 latents (most values cannot move by lr=1e-3)
    align_drop_last_update: bool = False  # keep only iters-1 of the alignment updates
    reference_cfg_pass: bool = False  # the degenerate 2-prompt guidance pass on the reference stream
    # "input": the UNet queried at the latent's own level (t - stride), an exact DDIM reverse only when
    # the predicted noise stays the same along the path; "target": the official/diffusers convention
    inversion_model_timestep: str = "input"
    reference_video: bool = False  # the reference stream keeps its whole evolving video (sliced)

    @classmethod
    def official(cls) -> FaithfulSwitches:
        """Every switch on: the authors' loop (conf/sampler/official.yaml, tests/test_authors_loop.py)."""
        return cls(
            **{f.name: True for f in fields(cls) if f.type == "bool"}, inversion_model_timestep="target"
        )

    def describe(self) -> str:
        """`ours` (every switch off), `official` (every switch on) or `ours + faithful.<on>, ...`."""
        if self == FaithfulSwitches():
            return "ours"
        if self == FaithfulSwitches.official():
            return "official"
        on = [f.name for f in fields(self) if getattr(self, f.name) != getattr(FaithfulSwitches(), f.name)]
        return "ours + " + ", ".join(f"faithful.{n}" for n in on)


def typed_settings(cls, d: dict, prefix: str) -> dict:
    """Check names and types of dataclass settings: unknown keys (with a near-miss suggestion),
    'abc' or 2.5 for an integer, nan/inf for a number, anything but true/false for a switch. A
    field's metadata (`_setting`) adds bounds (lo, hi), choices, or a check of its own; `Any` is
    left as given (a later rule checks it); a nested dataclass field is checked on its own."""
    from difflib import get_close_matches

    from .checks import as_bool, as_choice, as_float, as_int, as_str

    declared = {f.name: f for f in fields(cls) if not is_dataclass(f.default_factory)}
    unknown = sorted(set(d) - set(declared))
    if unknown:
        close = get_close_matches(str(unknown[0]), list(declared), n=1)
        hint = f"; did you mean {prefix}.{close[0]}?" if close else ""
        raise UserError(f"unknown {prefix} setting(s): {', '.join(map(str, unknown))}{hint}")
    check = {"int": as_int, "float": as_float, "bool": as_bool, "str": as_str, "Any": lambda v, name: v}

    def checked(k, v):
        kind, meta, name = declared[k].type, declared[k].metadata, f"{prefix}.{k}" if prefix else k
        if kind.endswith(" | None"):  # optional setting: null means "the default rule"
            if v is None:
                return None
            kind = kind[: -len(" | None")]
        if "check" in meta:
            return meta["check"](v, name)
        if "choices" in meta:
            return as_choice(v, name, meta["choices"])
        if "lo" in meta or "hi" in meta:
            return check[kind](v, name, meta.get("lo"), meta.get("hi"))
        return check[kind](v, name)

    return {k: checked(k, v) for k, v in d.items()}


def _setting(default=None, **meta):
    """A dataclass field with what `typed_settings` checks besides its type: lo, hi, choices or check."""
    return field(default=default, metadata=meta)


LAMBDA_MODES = ("logit", "weight")
PAPER_STEPS, PAPER_TAU1, PAPER_TAU2 = 25, 10, 15  # the paper's schedule: tau1 10 and tau2 15 of 25 steps


@dataclass
class SamplerConfig:
    num_frames: int = 10
    num_inference_steps: int = 25
    guidance_scale: float = 9.0
    negative_prompt: str = ""
    tau1: int | None = None  # frame alignment at steps i < tau1; None: the paper's 10 of 25, scaled
    tau2: int | None = None  # attention composition at steps i <= tau2; None: the paper's 15 of 25, scaled
    lambda_: float = 0.5  # motion (0) <-> fidelity (1)
    lambda_denominator: float = 50.0  # the official constant in (1 + lambda * j / 50)
    # how the factor (1 + lambda * j / denominator) acts on key frame 0 in C^T: "logit" (official)
    # multiplies its pre-softmax logit; "weight" multiplies its attention weight before the softmax
    # renormalises (adds log(factor) to the logit), which raises frame 0's influence whatever the
    # logit's sign
    lambda_mode: str = "logit"
    compose_spatial: bool = True  # C^S
    compose_temporal: bool = True  # C^T
    reference_decay: bool = True  # reference copies max(1, N - i); False keeps N copies
    align: bool = True
    align_iters: int = 10
    align_lr: float = 1e-3
    align_checkpointing: bool = True
    reference_frame: bool = True  # False = plain text-to-video (no inversion, no reference)
    vae_decode_chunk: int = 8
    output_reference_frame0: bool = False  # output frame 0 = the reference stream's frame 0
    # one UNet call for the reference and the main stream at steps where their frame counts are
    # equal (step 0; every reference step with reference_decay false); false (default): two calls.
    # Off by default: batch size changes float32 rounding, and guidance amplifies it to ~4e-4 over a
    # whole sample (float64: 2e-14), for one call saved per sample with the decaying reference video.
    batch_streams: bool = False
    faithful: FaithfulSwitches = field(default_factory=FaithfulSwitches)

    @classmethod
    def from_dict(cls, d: dict | None) -> SamplerConfig:
        if d is not None and not isinstance(d, dict):
            raise UserError(f"sampler must be a mapping of settings, got {type(d).__name__}")
        d = dict(d or {})
        faithful_raw = d.pop("faithful", {}) or {}
        if not isinstance(faithful_raw, dict):
            raise UserError("sampler.faithful must be a mapping of switches")
        faithful = FaithfulSwitches(**typed_settings(FaithfulSwitches, faithful_raw, "sampler.faithful"))
        cfg = cls(**typed_settings(cls, d, "sampler"), faithful=faithful)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def composing(self) -> bool:
        return self.reference_frame and (self.compose_spatial or self.compose_temporal)

    def resolved_taus(self) -> tuple[int, int]:
        """(tau1, tau2) in steps of this schedule: an explicit integer is absolute; None is the
        paper's 10 (tau1) or 15 (tau2) of 25 steps scaled to num_inference_steps, rounded."""
        s = self.num_inference_steps
        tau1 = round(PAPER_TAU1 * s / PAPER_STEPS) if self.tau1 is None else self.tau1
        tau2 = round(PAPER_TAU2 * s / PAPER_STEPS) if self.tau2 is None else self.tau2
        return tau1, tau2

    def taus_used(self) -> dict | None:
        """{"tau1", "tau2"} as this schedule runs them (what meta.json records); None for plain
        text-to-video, which uses neither."""
        return (
            dict(zip(("tau1", "tau2"), self.resolved_taus(), strict=True)) if self.reference_frame else None
        )

    def validate(self) -> None:
        def bad(msg):
            raise UserError(msg)

        if not 2 <= self.num_frames <= 1024:
            bad(f"sampler.num_frames must be in [2, 1024], got {self.num_frames}")
        if not 1 <= self.num_inference_steps <= 1000:  # DDIM steps: at most the 1000 training timesteps
            bad(f"sampler.num_inference_steps must be in [1, 1000], got {self.num_inference_steps}")
        if not 0.0 <= self.lambda_ <= 1.0:
            bad(f"sampler.lambda_ must be in [0, 1], got {self.lambda_}")
        if self.guidance_scale < 0:
            bad(f"sampler.guidance_scale must be >= 0, got {self.guidance_scale}")
        if self.reference_frame:  # plain text-to-video uses neither tau
            for name in ("tau1", "tau2"):
                v = getattr(self, name)
                if v is not None and not 0 <= v <= self.num_inference_steps:
                    bad(
                        f"sampler.{name} must be in [0, num_inference_steps={self.num_inference_steps}] "
                        f"or null (the paper's {PAPER_TAU1 if name == 'tau1' else PAPER_TAU2} of "
                        f"{PAPER_STEPS} steps, scaled), got {v}"
                    )
        if self.align_iters < 0 or self.align_lr <= 0:
            bad("sampler.align_iters must be >= 0 and sampler.align_lr > 0")
        if self.vae_decode_chunk < 1:
            bad(f"sampler.vae_decode_chunk must be >= 1, got {self.vae_decode_chunk}")
        if self.lambda_denominator <= 0:
            bad("sampler.lambda_denominator must be > 0")
        if self.lambda_mode not in LAMBDA_MODES:
            bad(f"sampler.lambda_mode must be one of {', '.join(LAMBDA_MODES)}, got {self.lambda_mode!r}")
        if self.faithful.inversion_model_timestep not in ("target", "input"):
            bad("sampler.faithful.inversion_model_timestep must be 'target' or 'input'")


# ------------------------------------------------------------------ training (conf/train.yaml)
# Lightning's trainer.precision values: the one list (flipsketch-train's check, the LoRA module's
# guard and experiments/bench_train.py read it from here).
PRECISIONS = (
    "32-true",
    "16-mixed",
    "bf16-mixed",
    "64-true",
    "16-true",
    "bf16-true",
    "transformer-engine",
    "32",
    "16",
    "bf16",
    "64",
)
MIXED_PRECISIONS = ("16-mixed", "bf16-mixed")  # autocast; the weights stay fp32
HALF_TRUE = ("16-true", "bf16-true", "16", "bf16", "transformer-engine")  # these cast the weights too
LATENT_MODES = ("sample", "mean")  # data.latent_mode: a seeded posterior sample, or its mean
LORA_TARGETS = ("attn", "spatial", "temporal", "all")  # module.lora.targets, or a list of module names


def _precision(value, name: str):
    if str(value) not in PRECISIONS:
        raise UserError(f"{name} must be one of {', '.join(PRECISIONS)}, got {value!r}")
    return value


def _positive(value, name: str):
    from .checks import as_float

    if as_float(value, name) <= 0:
        raise UserError(f"{name} must be > 0, got {value}")
    return value


def _lora_targets(value, name: str):
    names = isinstance(value, list) and value and all(isinstance(t, str) for t in value)
    if not (names or value in LORA_TARGETS):
        raise UserError(
            f"{name} must be attn, spatial, temporal, all or a list of module names, got {value!r}"
        )
    return value


# The settings flipsketch-train checks before anything is built (flipsketch.training.settings builds
# them from the composed config). `data`, `trainer` and `module` are open groups, the keyword arguments
# of the DataModule, Lightning's Trainer and the LoRA module, whose values are their YAML options':
# these classes declare the keys that are checked, and null means "not set, not checked". A key they
# do not declare (a _target_, Lightning's own arguments) is left to the object that takes it.


@dataclass
class RunSettings:
    """conf/train.yaml's top level."""

    train: bool = True
    export_lora: bool = True
    seed: int | None = _setting(lo=0, hi=MAX_SEED)
    ckpt_path: Any = None  # a resumable checkpoint of this model and LoRA (training.settings.check_resume)


@dataclass
class DataSettings:
    """The data group (conf/data/*.yaml)."""

    num_frames: int | None = _setting(lo=1)
    stride: int | None = _setting(lo=1)
    batch_size: int | None = _setting(lo=1)
    val_batch_size: int | None = _setting(lo=1)
    num_workers: int = _setting(0, lo=0)
    max_val_clips: int | None = _setting(lo=0)
    cache_latents: bool = False
    pin_memory: bool = False
    latent_mode: str | None = _setting(choices=LATENT_MODES)
    generate: Any = None  # a mapping of data_gen settings (training.settings.check_data_source)
    root: Any = None  # a dataset folder unless generate builds one (check_data_source)


@dataclass
class TrainerSettings:
    """The trainer group (conf/trainer/*.yaml)."""

    max_steps: int | None = _setting(lo=-1)
    max_epochs: int | None = _setting(lo=-1)
    accumulate_grad_batches: int | None = _setting(lo=1)
    log_every_n_steps: int | None = _setting(lo=1)
    num_sanity_val_steps: int | None = _setting(lo=-1)
    val_check_interval: float | None = _setting(lo=0.0)
    gradient_clip_val: float | None = _setting(lo=0.0)
    enable_progress_bar: bool = True
    precision: str | None = _setting(check=_precision)
    accelerator: Any = None  # gpu or cuda needs a CUDA GPU (training.settings.check_accelerator)


@dataclass
class LoraSettings:
    """module.lora, the LoRA's shape. Its defaults are written here once: stored as `lora_defaults`,
    which conf/train.yaml's module.lora starts from, and LoRAVideoModule fills what a caller leaves out."""

    rank: int | None = _setting(4, lo=1, hi=4096)
    alpha: Any = None  # null: alpha = rank (scale 1, as the authors' trainer)
    # attn | spatial | temporal | all (every Linear/Conv, the authors') | [module names]
    targets: str | list | None = _setting("attn", check=_lora_targets)
    dropout: float | None = _setting(0.0, lo=0.0, hi=1.0)  # the authors used 0.1
    text_encoder: bool | None = False  # true: LoRA on the text encoder's attention/MLP linears too
    text_encoder_rank: Any = None  # null: rank


@dataclass
class OptimizerSettings:
    lr: float | None = _setting(check=_positive)


@dataclass
class ModuleSettings:
    """The LoRA module's settings (conf/train.yaml's module)."""

    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    noise_offset: float | None = None
    caption_dropout: float | None = _setting(lo=0.0, hi=1.0)


SAMPLER_DEFAULTS = "sampler_defaults"  # the ConfigStore name conf/sampler/flipsketch.yaml starts from
LORA_DEFAULTS = "lora_defaults"  # the node conf/train.yaml's module.lora starts from


def register_configs() -> None:
    """Store the dataclass defaults in Hydra's ConfigStore (idempotent; call before composing)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance().store
    store(name=SAMPLER_DEFAULTS, node=SamplerConfig().to_dict(), provider="flipsketch")
    store(name=LORA_DEFAULTS, node=asdict(LoraSettings()), provider="flipsketch")
