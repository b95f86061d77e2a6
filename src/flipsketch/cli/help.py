"""The --help page: the CLI's own text, its config groups and their options (read from conf/, so
it never goes stale), and the defaults a run with these overrides really uses."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..resources import CONF_DIR
from .compose import compose_config, with_model_sampler


def _experiment_groups(path: Path) -> set[str]:
    """The config groups an experiment overrides (it applies to a CLI that has all of them)."""
    from omegaconf import OmegaConf

    out = set()
    for entry in OmegaConf.load(path).get("defaults") or []:
        if OmegaConf.is_dict(entry):
            for key in entry:
                key = str(key)
                if key.startswith("override /"):
                    out.add(key.removeprefix("override /").split("/")[0])
    return out


def help_page(config_name: str, text: str, program: str) -> str:
    """A short --help: the CLI's own text, then its config groups and their options (read from
    conf/, so it never goes stale), then where the full config is."""
    from omegaconf import OmegaConf

    lines = [text.strip(), ""]
    path = CONF_DIR / f"{config_name}.yaml"
    groups = []
    if path.is_file():
        for entry in OmegaConf.load(path).get("defaults") or []:
            if OmegaConf.is_dict(entry):
                for group, choice in entry.items():
                    group = str(group).removeprefix("override ")
                    if (CONF_DIR / group).is_dir() and group not in ("hydra", "paths"):
                        groups.append((group, choice))
    if groups:
        names = {g for g, _ in groups}
        lines.append("Config groups (group=default, and the other options):")
        for group, choice in groups:
            opts = [
                p.stem
                for p in sorted((CONF_DIR / group).glob("*.yaml"))
                if group != "experiment" or _experiment_groups(p) <= names
            ]
            default = ", ".join(map(str, choice)) if OmegaConf.is_list(choice) else str(choice)
            default = "(none)" if default == "None" else default
            rest = [o for o in opts if o not in str(default).split(", ")]
            lines.append(f"  {group}={default}" + (f"   (also: {' | '.join(rest)})" if rest else ""))
        lines.append("")
    lines += [
        f"Every setting: {program} --cfg job [overrides]   (the composed config, nothing run)",
        f"Hydra's own flags: {program} --hydra-help   Configs: {CONF_DIR}/{config_name}.yaml",
        "Bad input ends with one `error:` line on stderr and exit code 2, with nothing written.",
    ]
    return "\n".join(lines)


HELP_SAMPLER_KEYS = (
    "num_inference_steps",
    "guidance_scale",
    "num_frames",
    "lambda_",
    "lambda_mode",
    "align",
    "align_iters",
    "align_lr",
)
HELP_OUTPUT_KEYS = ("binarize", "binarize_upscale", "fps", "formats")


def _value(v) -> str:
    from omegaconf import OmegaConf

    v = OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
    if isinstance(v, list):
        return "[" + ",".join(map(str, v)) + "]"
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def defaults_help(config_name: str, argv: list[str]) -> str:
    """What `config_name` with these overrides will actually run, composed the way a run is (the
    model's own sampler preset included), and every model `model=` takes. '' for a config with no
    sampler (train, export, ...)."""
    from ..config import SamplerConfig

    overrides = [a for a in argv if not a.startswith("-")]
    cfg = compose_config(config_name, with_model_sampler(config_name, overrides), return_hydra_config=True)
    if "sampler" not in cfg or "model" not in cfg:
        return ""
    choices = cfg.hydra.runtime.choices
    model, sampler = choices.get("model"), choices.get("sampler")
    lines = [
        f"The defaults this run uses (model={model} runs sampler={sampler}; conf/sampler/{sampler}.yaml):"
    ]
    s = cfg.sampler
    shown = [f"sampler.{k}={_value(s.get(k))}" for k in HELP_SAMPLER_KEYS if k in s]
    lines += ["  " + " ".join(shown[:4]), "  " + " ".join(shown[4:])]
    try:
        from omegaconf import OmegaConf

        tau1, tau2 = SamplerConfig.from_dict(OmegaConf.to_container(s, resolve=True)).resolved_taus()
        lines.append(
            f"  sampler.tau1={_value(s.get('tau1'))} sampler.tau2={_value(s.get('tau2'))}"
            f"   (used: alignment while step < {tau1}, composition while step <= {tau2})"
        )
    except UserError:
        pass
    if "output" in cfg:
        lines.append("  " + " ".join(f"output.{k}={_value(cfg.output.get(k))}" for k in HELP_OUTPUT_KEYS))
    lines.append(f"  model.resolution={_value(cfg.model.get('resolution'))}")
    models = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
    lines.append(f"Models (model=NAME; this run: {model}): {' | '.join(models)}")
    lines.append("Another model's defaults: {program} --help model=NAME")
    return "\n".join(lines)
