"""The tiny world: a small text-to-video model of the ModelScope classes, trained here from scratch.

`shapes`  procedural base-domain animations (filled, grey, textured and outlined shapes that move)
`train`   VAE -> text encoder + UNet3D pretraining -> export -> sketch LoRA, resumable (`make tiny-world`)
The shipped result loads as `model=tiny_pretrained`.
"""

# Shipped sketches the sketch LoRA never sees: the held-out set of experiments/tiny_world_evidence.py.
HELDOUT_SKETCHES = ("cat", "fish", "bird", "star", "car", "flag", "balloon", "flower")
