"""The export stage: the EMA weights of the vae/decoder and base stages as a diffusers model folder."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_dir
from .arch import RESOLUTION, build_base
from .card import write_model_card
from .state import require
from .vae import load_trained_vae

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "assets" / "tiny_pretrained"


def export_base(run: Path, out: Path) -> Path:
    """Write the EMA VAE + text encoder + UNet3D (safetensors) and the CLIP tokenizer as a diffusers folder."""
    from diffusers import DDIMScheduler
    from safetensors.torch import load_file

    from ..models.components import Components
    from ..models.loaders import save_pipeline_folder
    from ..models.tiny import MODELSCOPE_SCHEDULER
    from ..models.tokenizer import build_clip_tokenizer

    vae = load_trained_vae(run / "vae", run / "decoder")
    require(run / "base" / "state.safetensors", "base")
    text, unet = build_base()
    tensors = load_file(str(run / "base" / "state.safetensors"))
    text.load_state_dict({n[len("ema_text.") :]: t for n, t in tensors.items() if n.startswith("ema_text.")})
    unet.load_state_dict({n[len("ema_unet.") :]: t for n, t in tensors.items() if n.startswith("ema_unet.")})
    comps = Components(
        tokenizer=build_clip_tokenizer(),
        text_encoder=text,
        vae=vae,
        unet=unet,
        scheduler=DDIMScheduler(**MODELSCOPE_SCHEDULER),
        name="tiny_pretrained",
        source=str(out),
        resolution=RESOLUTION,
    )
    with atomic_dir(out) as tmp:  # replaces `out`: a new base invalidates the old sketch LoRA
        save_pipeline_folder(comps, tmp)  # tokenizer/ too: plain diffusers loads the folder as it is
    write_model_card(run, out)
    return out
