"""The rows of the table: FlipSketch variants (override sets on the sampler) and baselines.

`cfg.methods` names them in table order; each name is looked up in the variant catalogue
(`cfg.variants`, conf/variants/) or the baseline catalogue (`cfg.baseline`, conf/baseline/).
Every method carries the settings that change its output; their hash names its output folder,
so a rerun with the same settings finds (and skips) finished items and a changed setting never
reuses a stale video.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ..baselines import Baseline
from ..cli import instantiate_checked
from ..config import SamplerConfig
from ..errors import UserError


@dataclass
class Method:
    name: str  # catalogue key: the folder name and the results key
    label: str  # the table row
    kind: str  # "variant" | "baseline"
    settings: dict  # everything that changes the output (hashed)
    sampler: SamplerConfig | None = None  # variants
    baseline: Baseline | None = None  # baselines
    text_conditioned: bool = True
    uses_model: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.settings, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{self.fingerprint}"


def _container(node) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def _file_fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """size + sha256 of the first, middle and last MiB: changes when the weights change, costs
    milliseconds even for a 7 GB folder (a retrained file of the same size differs in every chunk)."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for off in sorted({0, max(0, size // 2 - chunk // 2), max(0, size - chunk)}):
            f.seek(off)
            h.update(f.read(chunk))
    return h.hexdigest()[:16]


def weights_fingerprint(model: dict) -> dict:
    """{file: fingerprint} of every local weight file the model config reads (its folder, LoRA files)."""
    from ..models.registry import TINY_PRETRAINED_DIR

    paths = [model.get(k) for k in ("path", "lora", "raw_lora")]
    if model.get("name") == "tiny_pretrained" and not model.get("path"):
        paths.append(str(TINY_PRETRAINED_DIR))
    out = {}
    for raw in paths:
        if not raw or not Path(str(raw)).expanduser().exists():
            continue  # a hub id or an absent file (the model builder reports that one)
        p = Path(str(raw)).expanduser().resolve()
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.suffix in WEIGHT_SUFFIXES)
        for f in files:
            out[str(f)] = _file_fingerprint(f)
    return out


def model_settings(cfg) -> dict:
    """What decides the model's output: its config, dtype, the weight files' contents, our version."""
    from .. import __version__

    model = _container(cfg.model) or {}
    model.pop("device", None)
    model.pop("default_sampler", None)  # the sampler settings themselves are in the key
    return {
        "model": model,
        "dtype": str(cfg.get("dtype", "auto")),
        "weights": weights_fingerprint(model),
        "flipsketch_version": __version__,
    }


def variant_method(cfg, name: str, entry) -> Method:
    entry = _container(entry) or {}
    over = entry.get("sampler") or {}
    if not isinstance(over, dict):
        raise UserError(f"variants.{name}.sampler must be a mapping of sampler settings")
    try:
        sampler = SamplerConfig.from_dict(deep_merge(_container(cfg.sampler), over))
    except UserError as exc:
        raise UserError(f"variant {name}: {exc}") from None
    settings = {
        "kind": "variant",
        "sampler": sampler.to_dict(),
        **model_settings(cfg),
        "frames": "raw",  # stored before post-processing (metrics.postprocess applies at scoring)
    }
    return Method(
        name,
        str(entry.get("label") or name),
        "variant",
        settings,
        sampler=sampler,
    )


def baseline_method(cfg, name: str, node) -> Method:
    baseline = instantiate_checked(node)
    if not isinstance(baseline, Baseline):
        raise UserError(f"baseline.{name} does not build a Baseline (got {type(baseline).__name__})")
    settings = {"kind": "baseline", "baseline": baseline.settings(), "size": int(cfg.model.resolution)}
    if baseline.uses_flipsketch_model:
        settings.update(model_settings(cfg), sampler=_container(cfg.sampler))
    return Method(
        name,
        baseline.label,
        "baseline",
        settings,
        baseline=baseline,
        text_conditioned=baseline.text_conditioned,
        uses_model=baseline.uses_flipsketch_model,
    )


def check_names(cfg) -> list[str]:
    names = cfg.get("methods")
    names = [names] if isinstance(names, str) else list(names or [])
    if not names:
        raise UserError("methods is empty: name the rows to run, e.g. methods=[full,no_align,svd]")
    variants, baselines = dict(cfg.get("variants") or {}), dict(cfg.get("baseline") or {})
    for n in names:
        if not isinstance(n, str) or (n not in variants and n not in baselines):
            from difflib import get_close_matches

            close = get_close_matches(str(n), [*variants, *baselines], n=1)
            raise UserError(
                f"unknown method {n!r}: variants are {', '.join(variants) or 'none'}; "
                f"baselines are {', '.join(baselines) or 'none'}"
                + (f"; did you mean {close[0]}?" if close else "")
            )
        if n in variants and n in baselines:
            raise UserError(f"{n!r} is both a variant and a baseline; rename one")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"methods lists {dupes} more than once")
    return names


def resolve_methods(cfg) -> list[Method]:
    """Check every name, build every selected baseline (a missing weight fails here, before sampling)."""
    names = check_names(cfg)
    return [
        variant_method(cfg, n, cfg.variants[n])
        if n in (cfg.get("variants") or {})
        else baseline_method(cfg, n, cfg.baseline[n])
        for n in names
    ]
