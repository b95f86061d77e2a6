"""CLIP-based evaluation metrics (FlipSketch paper, section 5):

* S2V consistency: cosine between the CLIP image embedding of the input sketch and of each
  generated frame, averaged over frames.
* T2V alignment: cosine between the CLIP text embedding of the prompt and each frame's image
  embedding, averaged over frames (a per-frame substitute for X-CLIP's text-video score).

Scores depend on the backbone, so `ClipScorer.backbone` names it ("open_clip:ViT-B-32/openai")
and must be reported next to every number. Nothing here touches the network: pretrained tags
are looked up in the local caches only.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from flipsketch.errors import MissingWeightsError, UserError

from ._io import as_float, image_list

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".npz")

# A tiny random CLIP (~3.5M parameters, mostly the 49408-token embedding) for tests and demos.
TINY_CLIP_CFG = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2, head_width=32),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
)


TINY_WORLD_DIR = Path(__file__).resolve().parents[1] / "assets" / "tiny_scorers"


def load_clip_folder(folder: Path):
    """An open_clip CLIP from a folder of open_clip_config.json + model.safetensors, checked: (model, cfg)."""
    import json

    import open_clip
    from open_clip.model import set_model_preprocess_cfg
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..quiet import quiet_third_party

    quiet_third_party()
    cfg_file, weights = folder / "open_clip_config.json", folder / "model.safetensors"
    if not cfg_file.is_file() or not weights.is_file():
        raise MissingWeightsError(
            f"CLIP scorer folder {folder} lacks open_clip_config.json or model.safetensors "
            "(retrain it with `make tiny-scorers`, or point metrics.scorer.folder at such a folder)"
        )
    try:
        cfg = json.loads(cfg_file.read_text())
        model = open_clip.CLIP(**cfg["model_cfg"])
        state = load_file(str(weights))
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise UserError(f"could not read the CLIP scorer in {folder}: {_one_line(exc)}") from exc
    own = model.state_dict()
    if set(state) != set(own):
        raise UserError(f"{weights} does not hold an open_clip CLIP of {cfg_file.name}'s layout (other keys)")
    bad = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if bad:
        raise UserError(
            f"{weights}: {bad[0]} has shape {tuple(state[bad[0]].shape)}, the config says {tuple(own[bad[0]].shape)}"
        )
    if not all(torch.isfinite(t.float()).all() for t in state.values()):
        raise UserError(f"{weights} holds non-finite weights")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    set_model_preprocess_cfg(model, cfg["preprocess_cfg"])
    return model.eval(), cfg


class TensorPreprocess:
    """open_clip's eval transform on tensors: resize (shortest side), center-crop, normalise.

    Input (3, H, W) or (N, 3, H, W) RGB, uint8 0-255 or float 0-1; output float (N, 3, h, w).
    uint8 input is resampled with torchvision's uint8 kernels, which reproduce open_clip's PIL
    pipeline (Resize -> CenterCrop -> ToTensor -> Normalize): bit-exact when downscaling, within
    one gray level when upscaling. Float input is resampled in float (no quantisation; its bicubic
    kernel differs from PIL's by a few gray levels at stroke edges), so prefer uint8 frames.
    """

    def __init__(self, size, mean, std, interpolation: str = "bicubic", resize_mode: str = "shortest"):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        if resize_mode not in ("shortest", "squash"):
            raise ValueError(f"resize_mode {resize_mode!r} is not supported (use 'shortest' or 'squash')")
        self.interpolation = InterpolationMode(interpolation)
        self.resize_mode = resize_mode

    @classmethod
    def from_model(cls, model) -> TensorPreprocess:
        from open_clip.model import get_model_preprocess_cfg

        cfg = get_model_preprocess_cfg(model)
        return cls(
            cfg["size"],
            cfg.get("mean", OPENAI_MEAN),
            cfg.get("std", OPENAI_STD),
            cfg.get("interpolation", "bicubic"),
            cfg.get("resize_mode", "shortest"),
        )

    def _resize(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) == hw:
            return x
        out = TF.resize(x, list(hw), interpolation=self.interpolation, antialias=True)
        return out if out.dtype == torch.uint8 else out.clamp(0.0, 1.0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x[None] if x.ndim == 3 else x
        th, tw = self.size
        h, w = x.shape[-2:]
        if self.resize_mode == "squash":
            x = self._resize(x, (th, tw))
        else:  # shortest side to the target (torchvision's rounding), then center-crop
            if th == tw:
                nh, nw = (th, int(th * w / h)) if h <= w else (int(th * h / w), th)
            else:
                scale = max(th / h, tw / w)
                nh, nw = max(th, int(h * scale)), max(tw, int(w * scale))
            x = self._resize(x, (nh, nw))
            top, left = int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0))
            x = x[..., top : top + th, left : left + tw]
        x = as_float(x)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _looks_like_path(value: str) -> bool:
    return "/" in value or os.sep in value or value.startswith(("~", ".")) or value.endswith(WEIGHT_SUFFIXES)


def _cached_tag_file(cfg: dict, cache_dir: str | None) -> tuple[str | None, str]:
    """Return (local file or None, where it was looked for), never downloading."""
    if cfg.get("file"):
        return (cfg["file"] if os.path.isfile(cfg["file"]) else None), cfg["file"]
    places = []
    if cfg.get("hf_hub"):
        from huggingface_hub import constants, try_to_load_from_cache
        from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        repo_id, filename = os.path.split(cfg["hf_hub"])  # "org/repo/" means the default file name
        filename = filename or HF_WEIGHTS_NAME
        names = [HF_SAFE_WEIGHTS_NAME] if filename == HF_WEIGHTS_NAME else []
        if filename.endswith((".bin", ".pth")) and filename != HF_WEIGHTS_NAME:
            names.append(filename[:-4] + ".safetensors")
        for name in [*names, filename]:
            hit = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit, ""
        places.append(f"HF cache {cache_dir or constants.HF_HUB_CACHE} (repo {repo_id})")
    if cfg.get("url"):
        url_dir = cache_dir or os.path.expanduser("~/.cache/clip")
        candidate = os.path.join(url_dir, os.path.basename(cfg["url"]))
        if os.path.isfile(candidate):
            return candidate, ""
        places.append(candidate)
    return None, " and ".join(places)


def _is_openai_release(path: str) -> bool:
    """Is this file OpenAI's original CLIP release? (Its sha256 names the folder of open_clip's
    'openai' download URL; the release is also a TorchScript archive, which other checkpoints are not.)"""
    import hashlib
    import zipfile

    import open_clip

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist()):
                return True
    known = set()
    for name in open_clip.list_models():
        cfg = open_clip.get_pretrained_cfg(name, "openai") or {}
        parts = str(cfg.get("url", "")).split("/")
        if len(parts) >= 2 and len(parts[-2]) == 64:
            known.add(parts[-2])
    if not known or os.path.getsize(path) < 1_000_000:  # the releases are hundreds of MB
        return False
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest() in known


def load_open_clip(
    model_name: str, pretrained: str | os.PathLike | None, device="cpu", cache_dir: str | None = None
):
    """Build an open_clip model offline. Returns (model in eval mode, weights label)."""
    import open_clip

    from ..quiet import quiet_third_party

    quiet_third_party()  # open_clip's INFO chatter about parsing identifiers

    if model_name not in open_clip.list_models():
        raise UserError(f"unknown open_clip model {model_name!r} (see open_clip.list_models())")
    kwargs: dict = {}
    pretrained = None if pretrained is None else os.fspath(pretrained)
    if pretrained is None:
        path, label = None, "random"
    elif _looks_like_path(pretrained):
        path = os.path.expanduser(pretrained)
        label = Path(path).name
        if not os.path.isfile(path):
            raise MissingWeightsError(
                f"CLIP weights file not found: {path} (put an open_clip checkpoint for {model_name} "
                "(.pt/.bin/.safetensors) there, or set pretrained to a tag already in the local cache)"
            )
        if not model_name.endswith("-quickgelu") and _is_openai_release(path):
            raise UserError(
                f"{path} holds OpenAI's CLIP weights, which were trained with QuickGELU: plain "
                f"{model_name} would silently run them with GELU; use model_name={model_name}-quickgelu"
            )
    else:
        cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
        if not cfg:
            tags = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
            raise UserError(
                f"unknown pretrained tag {pretrained!r} for open_clip {model_name} (known: {tags})"
            )
        path, where = _cached_tag_file(cfg, cache_dir)
        label = pretrained
        if path is None:
            raise MissingWeightsError(
                f"open_clip weights {model_name}/{pretrained} are not cached offline (looked in {where}); "
                f"fetch them once with network via open_clip.create_model({model_name!r}, pretrained={pretrained!r}) "
                "or set pretrained to a local .pt/.bin/.safetensors file"
            )
        kwargs["force_quick_gelu"] = bool(cfg.get("quick_gelu", False))
        pp = {k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg}
        if pp:
            kwargs["force_preprocess_cfg"] = pp
    try:
        model = open_clip.create_model(
            model_name, pretrained=path, device=device, require_pretrained=path is not None, **kwargs
        )
    except Exception as exc:  # a corrupt or mismatched checkpoint is the user's to fix
        raise UserError(
            f"could not load CLIP weights {path} into open_clip {model_name}: {_one_line(exc)}"
        ) from exc
    return model.eval(), label


class ClipScorer:
    """An open_clip model + tensor preprocess + tokenizer, with the paper's S2V / T2V metrics.

    `pretrained` is an open_clip tag found in the local cache ("openai"), a path to a local
    .pt/.bin/.safetensors checkpoint, or None for random weights. OpenAI's original checkpoint
    loaded from a file needs model_name "ViT-B-32-quickgelu" (the tag sets that by itself).
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | os.PathLike | None = "openai",
        device: str | torch.device = "cpu",
        cache_dir: str | None = None,
        batch_size: int = 32,
    ):
        import open_clip

        model, label = load_open_clip(model_name, pretrained, device=device, cache_dir=cache_dir)
        try:
            tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as exc:
            raise MissingWeightsError(
                f"tokenizer for open_clip {model_name} is not available offline: {_one_line(exc)}"
            ) from exc
        self._setup(model, tokenizer, f"open_clip:{model_name}/{label}", device, batch_size)

    def _setup(self, model, tokenizer, backbone: str, device, batch_size: int) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.preprocess = TensorPreprocess.from_model(model)
        self.batch_size = int(batch_size)
        self._backbone = backbone

    @classmethod
    def from_model(cls, model, tokenizer, backbone: str, device="cpu", batch_size: int = 32) -> ClipScorer:
        """Wrap an already-built open_clip model (its preprocess config is read from the model)."""
        self = cls.__new__(cls)
        self._setup(model, tokenizer, backbone, device, batch_size)
        return self

    @classmethod
    def tiny(cls, seed: int = 0, device="cpu", batch_size: int = 32) -> ClipScorer:
        """A tiny randomly initialised CLIP, built offline and deterministic in `seed`."""
        import open_clip
        from open_clip.model import set_model_preprocess_cfg

        from ..quiet import quiet_third_party

        quiet_third_party()

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = open_clip.CLIP(**TINY_CLIP_CFG)
        size = TINY_CLIP_CFG["vision_cfg"]["image_size"]
        pp = dict(
            size=size, mean=OPENAI_MEAN, std=OPENAI_STD, interpolation="bicubic", resize_mode="shortest"
        )
        set_model_preprocess_cfg(model, pp)
        tokenizer = open_clip.get_tokenizer("ViT-B-32")
        return cls.from_model(model, tokenizer, f"open_clip:tiny-random(seed={seed})", device, batch_size)

    @classmethod
    def tiny_world(
        cls, folder: str | os.PathLike | None = None, device="cpu", batch_size: int = 32
    ) -> ClipScorer:
        """The CLIP trained for the tiny world (shipped under assets/tiny_scorers/clip, or `folder`)."""
        import open_clip

        folder = Path(folder).expanduser() if folder is not None else TINY_WORLD_DIR / "clip"
        model, cfg = load_clip_folder(folder)
        tokenizer = open_clip.get_tokenizer(cfg.get("tokenizer", "ViT-B-32"))
        return cls.from_model(model, tokenizer, f"open_clip:tiny-world({folder.name})", device, batch_size)

    @property
    def backbone(self) -> str:
        return self._backbone

    @torch.inference_mode()
    def _encode(self, imgs: list[torch.Tensor], batch_size: int | None) -> torch.Tensor:
        bs = int(batch_size or self.batch_size)
        out = []
        for i in range(0, len(imgs), bs):
            x = torch.cat([self.preprocess(im.to(self.device)) for im in imgs[i : i + bs]])
            out.append(F.normalize(self.model.encode_image(x).float(), dim=-1).cpu())
        return torch.cat(out)

    def encode_images(self, images, batch_size: int | None = None) -> torch.Tensor:
        """Images (see `_io` for formats) -> (N, D) L2-normalised float32 embeddings on CPU."""
        return self._encode(image_list(images), batch_size)

    @torch.inference_mode()
    def encode_text(self, texts: str | list[str]) -> torch.Tensor:
        """Texts -> (N, D) L2-normalised float32 embeddings on CPU."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        tokens = self.tokenizer(texts).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu()

    def _frame_embeddings(self, frames, skip_first: bool) -> torch.Tensor:
        emb = self.encode_images(frames)
        if skip_first:
            emb = emb[1:]
        if len(emb) == 0:
            raise ValueError("no frames left to score (skip_first on a one-frame clip)")
        return emb

    def s2v_per_frame(self, sketch, frames, skip_first: bool = False) -> torch.Tensor:
        ref = self._encode(image_list(sketch, single=True), None)
        return self._frame_embeddings(frames, skip_first) @ ref[0]

    def t2v_per_frame(self, prompt: str, frames, skip_first: bool = False) -> torch.Tensor:
        return self._frame_embeddings(frames, skip_first) @ self.encode_text(prompt)[0]

    def s2v(self, sketch, frames, skip_first: bool = False) -> float:
        """Sketch-to-video consistency: mean CLIP image-image cosine of the sketch vs each frame."""
        return float(self.s2v_per_frame(sketch, frames, skip_first).mean())

    def t2v(self, prompt: str, frames, skip_first: bool = False) -> float:
        """Text-to-video alignment: mean CLIP text-image cosine of the prompt vs each frame."""
        return float(self.t2v_per_frame(prompt, frames, skip_first).mean())

    def __repr__(self) -> str:
        return f"ClipScorer({self.backbone}, device={self.device})"


def passes_clip_filter(filter_cfg, sketch_image, video) -> bool:
    """output.clip_filter: keep a clip when its mean per-frame CLIP sketch-to-video similarity
    (backbone `filter_cfg.model_name`/`pretrained`) is above `filter_cfg.threshold`."""
    scorer = ClipScorer(filter_cfg.model_name, filter_cfg.pretrained)
    per_frame = scorer.s2v_per_frame(sketch_image, video)
    return bool(per_frame.mean() > float(filter_cfg.threshold))
