"""Train the tiny world from scratch: VAE, then text encoder + UNet3D, on procedural shape clips.

    python -m flipsketch.tiny_world --stage vae  --minutes 10
    python -m flipsketch.tiny_world --stage base --minutes 60
    python -m flipsketch.tiny_world --stage decoder  # sharper decoder, same latent space
    python -m flipsketch.tiny_world --stage export   # -> src/flipsketch/assets/tiny_pretrained
    python -m flipsketch.tiny_world --stage lora     # sketch LoRA on the shipped sketches

Every stage is resumable: it keeps `state.safetensors` (weights, EMA) + `optim.pt` (optimizer,
loaded with weights_only=True) + `progress.json` under `--run`, saves every `--save-every` steps
and at the end, and a restarted command continues from the last save with the same data stream
(batch k is drawn from seeds derived from k). A stage stops at `--steps` or after `--minutes` of
wall time, whichever comes first; run it again to train further.

Architecture (same classes as ModelScope): AutoencoderKL 4x down (64x64x3 -> 16x16x4),
CLIPTextModel (hidden 32, 2 layers, CLIP BPE tokenizer), UNet3DConditionModel with spatial
self-attention at the working 16x16 resolution, DDIM/DDPM scaled-linear schedule as ModelScope.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import report_user_errors
from ..threads import use_threads
from .base import train_base
from .domains import DOMAINS
from .export import DEFAULT_OUT, export_base
from .lora import LORA_STEPS, train_lora
from .state import copy_init_source
from .vae import train_vae

# The stages live beside this command line, one module per job: arch (the model's sizes), domains
# (the clips), state (resumable state files, --init), vae, base, export, lora, card (MODEL_CARD.md).


@report_user_errors
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=["vae", "base", "decoder", "export", "lora"], required=True)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="where export/lora write the model folder")
    p.add_argument("--run", default="runs/tiny_world", help="folder for the stages' resumable state")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"stop at this step (vae 600, decoder 300, base 20000, lora {LORA_STEPS})",
    )
    p.add_argument("--minutes", type=float, default=1e9, help="stop after this much wall time")
    p.add_argument("--batch", type=int, default=None, help="per step: vae/decoder 16 frames, base 4 clips")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument(
        "--threads", default="auto", help="torch CPU threads (default auto: the cores free at start)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="vae/decoder/base: cpu or cuda (bf16 autocast on cuda)")
    p.add_argument(
        "--domain", choices=DOMAINS, default="doodles", help="base-domain clips (default: doodles)"
    )
    p.add_argument(
        "--spans",
        nargs="*",
        default=None,
        metavar="PROGRAM=N,N",
        help="base (doodles): a clip of PROGRAM is a window of it animated over one of these frame counts "
        "(e.g. spin=24,32 fly=16,24: slower spins and flights; default: every program whole in the "
        "8-frame clip, as the shipped model was trained)",
    )
    p.add_argument(
        "--init",
        default=None,
        help="vae/base: start from the weights of this model folder (e.g. the shipped tiny_pretrained) "
        "instead of random ones; ignored when the stage resumes its own state",
    )
    p.add_argument("overrides", nargs="*", help="lora stage: extra Hydra overrides for flipsketch-train")
    a = p.parse_args(argv)
    use_threads(a.threads, "--threads")
    run = Path(a.run)
    init = copy_init_source(Path(a.init)) if a.init else None
    try:
        common = dict(
            minutes=a.minutes, save_every=a.save_every, seed=a.seed, domain=a.domain, device=a.device
        )
        if a.stage in ("vae", "decoder"):  # the decoder stage: a sharper decoder, the VAE's encoder kept
            decoder = a.stage == "decoder"
            train_vae(
                run / a.stage,
                steps=a.steps or (300 if decoder else 600),
                batch=a.batch or 16,
                lr=a.lr or (5e-4 if decoder else 1e-3),
                init_from=run / "vae" if decoder else None,
                init_dir=None if decoder else init,
                **common,
            )
        elif a.stage == "base":
            train_base(
                run / "base",
                run / "vae",
                steps=a.steps or 20000,
                batch=a.batch or 4,
                lr=a.lr or 1e-3,
                init_dir=init,
                spans=None if a.spans is None else parse_spans(a.spans),
                **common,
            )
        elif a.stage == "export":
            print(f"exported {export_base(run, Path(a.out))}")
        else:
            print(f"sketch LoRA: {train_lora(run, Path(a.out), a.steps or LORA_STEPS, a.overrides)}")
    finally:
        if init is not None:  # the private copy of the --init weights
            import shutil

            shutil.rmtree(init, ignore_errors=True)
    return 0


def parse_spans(items: list[str]) -> dict[str, tuple[int, ...]]:
    """['spin=24,32', 'fly=16'] -> {'spin': (24, 32), 'fly': (16,)} (a bad item: a one-line error)."""
    from ..errors import UserError
    from .doodles import PHRASES

    out = {}
    for item in items:
        name, _, counts = item.partition("=")
        try:
            out[name] = tuple(int(c) for c in counts.split(","))
        except ValueError:
            raise UserError(f"--spans: expected PROGRAM=N,N (e.g. spin=24,32), got {item!r}") from None
        if name not in PHRASES:
            raise UserError(f"--spans: unknown motion program {name!r}; choose from {', '.join(PHRASES)}")
        if not out[name] or min(out[name]) < 1:
            raise UserError(f"--spans: expected PROGRAM=N,N with N >= 1, got {item!r}")
    return out


if __name__ == "__main__":
    sys.exit(main())
