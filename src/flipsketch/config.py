"""Sampler settings: every knob of the paper with its default, and the `faithful` switches.

The defaults are written here once. `register_configs()` stores them in Hydra's ConfigStore as
`sampler_defaults`, which conf/sampler/flipsketch.yaml starts from (so the YAML holds only comments
and what differs); the composing code (flipsketch.cli.compose) calls it before every composition. The
node is stored untyped so that a mistyped value still reaches `SamplerConfig.from_dict` and its
one-line message. Foundation layer: imports only errors and checks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

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


def _typed(cls, d: dict, prefix: str) -> dict:
    """Check names and types of dataclass settings: unknown keys (with a near-miss suggestion),
    'abc' or 2.5 for an integer, nan/inf for a number, anything but true/false for a switch."""
    from difflib import get_close_matches

    from .checks import as_bool, as_float, as_int, as_str

    types = {f.name: f.type for f in fields(cls) if f.name != "faithful"}
    unknown = sorted(set(d) - set(types))
    if unknown:
        close = get_close_matches(str(unknown[0]), list(types), n=1)
        hint = f"; did you mean {prefix}.{close[0]}?" if close else ""
        raise UserError(f"unknown {prefix} setting(s): {', '.join(map(str, unknown))}{hint}")
    check = {"int": as_int, "float": as_float, "bool": as_bool, "str": as_str}

    def checked(k, v):
        kind = types[k]
        if kind.endswith(" | None"):  # optional setting: null means "the default rule"
            if v is None:
                return None
            kind = kind[: -len(" | None")]
        return check[kind](v, f"{prefix}.{k}")

    return {k: checked(k, v) for k, v in d.items()}


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
        faithful = FaithfulSwitches(**_typed(FaithfulSwitches, faithful_raw, "sampler.faithful"))
        cfg = cls(**_typed(cls, d, "sampler"), faithful=faithful)
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


SAMPLER_DEFAULTS = "sampler_defaults"  # the ConfigStore name conf/sampler/flipsketch.yaml starts from


def register_configs() -> None:
    """Store the dataclass defaults in Hydra's ConfigStore (idempotent; call before composing)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SAMPLER_DEFAULTS, node=SamplerConfig().to_dict(), provider="flipsketch")
