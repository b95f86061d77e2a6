"""FlipSketch: one static sketch + a text prompt -> a flip-book animation.

Implements "FlipSketch: Flipping Static Drawings to Text-Guided Sketch Animations" (CVPR 2025):
LoRA fine-tuning of a text-to-video UNet, a DDIM-inverted reference frame, iterative frame
alignment and dual (spatial + temporal) attention composition.
"""

__version__ = "0.1.0"
