"""T2V with X-CLIP: the text-to-video score of prior work that the FlipSketch paper's Table 1 follows.

X-CLIP embeds the whole clip (per-frame CLIP features fused over time by its multi-frame
integration transformer) and a text embedding conditioned on the clip (its video-specific
prompting); the score is the cosine of the two, i.e. X-CLIP's `logits_per_video` divided by its
logit scale. Compare with `ClipScorer.t2v`, the mean per-frame CLIP text-image cosine.

Frame sampling: X-CLIP has a fixed frame count (`vision_config.num_frames`, 8 for
microsoft/xclip-base-patch32). A clip of T frames is sampled at round(linspace(0, T-1, K)):
evenly spaced, first and last frame kept; a clip shorter than K repeats frames (nearest in time).

Weights come from a local folder (config.json, model.safetensors or pytorch_model.bin and the
processor files, as saved by `save_pretrained`) or the Hugging Face cache in the same layout
(a hub id such as microsoft/xclip-base-patch32). Nothing here downloads.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from flipsketch.errors import MissingWeightsError, UserError

from ._io import as_float, image_list
from .policy import sample_indices

DEFAULT_XCLIP = "microsoft/xclip-base-patch32"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")

# A tiny random X-CLIP (~1.6M parameters, mostly the 49408-token embedding) for tests and demos.
TINY_XCLIP_CFG = dict(
    text_config=dict(
        vocab_size=49408,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=77,
    ),
    vision_config=dict(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_frames=8,
        mit_hidden_size=32,
        mit_intermediate_size=64,
        mit_num_hidden_layers=1,
        mit_num_attention_heads=2,
    ),
    projection_dim=32,
    prompt_layers=1,
    prompt_num_attention_heads=2,
)


TINY_WORLD_XCLIP = Path(__file__).resolve().parents[1] / "assets" / "tiny_scorers" / "xclip"


def check_xclip_folder(folder: Path) -> None:
    """Refuse a scorer folder whose weights are missing, unreadable, of another class or size."""
    import json

    from safetensors import SafetensorError, safe_open

    cfg_file, weights = folder / "config.json", folder / "model.safetensors"
    if not cfg_file.is_file() or not weights.is_file():
        raise _missing(f"X-CLIP scorer folder {folder} lacks config.json or model.safetensors")
    try:
        cfg = json.loads(cfg_file.read_text())
        with safe_open(str(weights), "pt") as f:
            keys = set(f.keys())
            shape = (
                f.get_slice("text_projection.weight").get_shape()
                if "text_projection.weight" in keys
                else None
            )
    except (OSError, ValueError, SafetensorError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise UserError(f"could not read the X-CLIP scorer in {folder}: {first}") from exc
    if cfg.get("model_type") != "xclip" or not any(k.startswith("prompts_generator.") for k in keys):
        raise UserError(
            f"{folder} does not hold an X-CLIP model (config model_type {cfg.get('model_type')!r})"
        )
    want = [int(cfg.get("projection_dim", 0)), int(cfg.get("text_config", {}).get("hidden_size", 0))]
    if shape is None or list(shape) != want:
        raise UserError(f"{weights}: text_projection has shape {shape}, its config.json says {want}")


@contextlib.contextmanager
def _no_progress_bars():
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _missing(what: str) -> MissingWeightsError:
    return MissingWeightsError(
        f"{what}; put an X-CLIP model there in the {DEFAULT_XCLIP} layout (config.json, model.safetensors "
        "or pytorch_model.bin, preprocessor and tokenizer files), or fetch it once with network: "
        f"huggingface-cli download {DEFAULT_XCLIP}"
    )


def resolve_xclip(pretrained: str | os.PathLike, cache_dir: str | None = None) -> tuple[str, str]:
    """(what to pass to from_pretrained, label) for a local folder or a hub id already in the HF cache."""
    raw = os.fspath(pretrained)
    folder = Path(raw).expanduser()
    if folder.exists() or not _HUB_ID.match(raw):
        if not folder.is_dir():
            raise _missing(f"X-CLIP folder not found: {folder}")
        if not (folder / "config.json").is_file() or not any((folder / f).is_file() for f in WEIGHT_FILES):
            raise _missing(f"X-CLIP folder {folder} lacks config.json or weights ({', '.join(WEIGHT_FILES)})")
        return str(folder), folder.name
    from huggingface_hub import constants, try_to_load_from_cache

    hit = try_to_load_from_cache(raw, "config.json", cache_dir=cache_dir)
    if not isinstance(hit, str) or not os.path.isfile(hit):
        raise _missing(
            f"X-CLIP {raw} is not in the Hugging Face cache (looked in {cache_dir or constants.HF_HUB_CACHE})"
        )
    return raw, raw


class XClipScorer:
    """X-CLIP text-to-video score (`t2v`), named by `backbone` ("xclip:microsoft/xclip-base-patch32")."""

    def __init__(
        self,
        pretrained: str | os.PathLike = DEFAULT_XCLIP,
        device: str | torch.device = "cpu",
        cache_dir: str | None = None,
        label: str | None = None,
    ):
        from transformers import XCLIPModel, XCLIPProcessor

        source, name = resolve_xclip(pretrained, cache_dir)
        try:
            with _no_progress_bars():
                model = XCLIPModel.from_pretrained(source, local_files_only=True, cache_dir=cache_dir)
                processor = XCLIPProcessor.from_pretrained(source, local_files_only=True, cache_dir=cache_dir)
        except Exception as exc:  # a partial or mismatched folder is the user's to fix
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise UserError(f"could not load X-CLIP from {source}: {first}") from exc
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.num_frames = int(model.config.vision_config.num_frames)
        self._backbone = f"xclip:{label or name}"

    @classmethod
    def tiny(cls, seed: int = 0, device="cpu", folder: str | os.PathLike | None = None) -> XClipScorer:
        """A tiny random X-CLIP built offline (deterministic in `seed`), saved and loaded back through
        the same path as real weights; into `folder` when given, else a temporary folder."""
        if folder is not None:
            build_tiny_xclip(folder, seed)
            return cls(folder, device=device, label=f"tiny-random(seed={seed})")
        with tempfile.TemporaryDirectory(prefix="tiny-xclip-") as tmp:
            build_tiny_xclip(tmp, seed)
            return cls(tmp, device=device, label=f"tiny-random(seed={seed})")

    @classmethod
    def tiny_world(cls, folder: str | os.PathLike | None = None, device="cpu") -> XClipScorer:
        """The X-CLIP trained for the tiny world (shipped under assets/tiny_scorers/xclip, or `folder`)."""
        folder = Path(folder).expanduser() if folder is not None else TINY_WORLD_XCLIP
        check_xclip_folder(folder)
        return cls(folder, device=device, label=f"tiny-world({folder.name})")

    @property
    def backbone(self) -> str:
        return self._backbone

    def _video(self, frames, skip_first: bool) -> list[np.ndarray]:
        """Frames (see `_io` for formats) -> the model's frame count of RGB uint8 (H, W, 3) arrays."""
        clip = [
            (as_float(im) * 255.0).round().to(torch.uint8) if im.dtype != torch.uint8 else im
            for im in image_list(frames)
        ]
        if skip_first:
            clip = clip[1:]
        if not clip:
            raise ValueError("no frames left to score (skip_first on a one-frame clip)")
        return [clip[i].permute(1, 2, 0).numpy() for i in sample_indices(len(clip), self.num_frames)]

    @torch.inference_mode()
    def t2v(self, prompt: str, frames, skip_first: bool = False) -> float:
        """Cosine of X-CLIP's video embedding and its video-conditioned text embedding of `prompt`."""
        inputs = self.processor(
            text=[prompt], videos=[self._video(frames, skip_first)], return_tensors="pt", padding=True
        )
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        out = self.model(**inputs)
        video = F.normalize(out.video_embeds.float(), dim=-1)[0]
        text = F.normalize(out.text_embeds.float(), dim=-1)[0, 0]
        return float(video @ text)

    def __repr__(self) -> str:
        return f"XClipScorer({self.backbone}, device={self.device})"


def build_tiny_xclip(folder: str | os.PathLike, seed: int = 0) -> Path:
    """Write a tiny random X-CLIP (model + processor, the CLIP tokenizer shipped with the tiny model)
    to `folder` in the microsoft/xclip-base-patch32 layout. Offline and deterministic in `seed`."""
    from transformers import CLIPTokenizer, VideoMAEImageProcessor, XCLIPConfig, XCLIPModel, XCLIPProcessor

    from ..models.registry import TINY_PRETRAINED_DIR

    folder = Path(folder)
    side = TINY_XCLIP_CFG["vision_config"]["image_size"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = XCLIPModel(XCLIPConfig(**TINY_XCLIP_CFG)).eval()
    tokenizer = CLIPTokenizer.from_pretrained(str(Path(TINY_PRETRAINED_DIR) / "tokenizer"))
    images = VideoMAEImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    with _no_progress_bars():
        model.save_pretrained(folder)  # safetensors
        XCLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder
