"""The tiny world: a small text-to-video model of the ModelScope classes, trained here from scratch.

`doodles`, `shapes`  procedural base-domain animations (moving line drawings; filled, grey, textured
                     and outlined shapes), picked by `domains.render_domain`
`train`   the command line: VAE -> text encoder + UNet3D pretraining -> export -> sketch LoRA,
          resumable (`make tiny-world`); one module per stage: `vae`, `base`, `export`, `lora`,
          with `arch` (sizes), `state` (resumable state files), `card` (MODEL_CARD.md)
The shipped result loads as `model=tiny_pretrained`.
"""

# Shipped sketches the sketch LoRA never sees: the held-out set of experiments/tiny_world_evidence.py
# and of the `shipped` benchmark (defined beside the data it describes).
from data_gen.build import HELDOUT_SKETCHES

__all__ = ["HELDOUT_SKETCHES"]
