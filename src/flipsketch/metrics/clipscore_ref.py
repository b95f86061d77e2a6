"""Cross-check of `ClipScorer.t2v` against torchmetrics' CLIPScore on the SAME open_clip model.

torchmetrics' default loads a HF hub model (impossible offline), but `model_name_or_path` may be a
factory returning (model, processor): the model needs `get_image_features(pixel_values)` and
`get_text_features(input_ids, attention_mask)` returning tensors, the processor maps
`text=` / `images=` to those inputs. Both are thin adapters around the scorer here.

CLIPScore = max(100 * mean_i cos(text, frame_i), 0), so for a clip with positive mean cosine
`clipscore_reference(...) / 100 == scorer.t2v(...)`.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from ._io import image_list
from .clip_metrics import ClipScorer


class _OpenClipAsHF(nn.Module):
    """Exposes an open_clip model through the two methods torchmetrics calls."""

    def __init__(self, scorer: ClipScorer):
        super().__init__()
        self.clip = scorer.model
        self.config = SimpleNamespace()  # no text_config: torchmetrics then skips its truncation check

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_image(pixel_values).float()

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.clip.encode_text(input_ids).float()


class _OpenClipProcessor:
    """Processor callable: the scorer's tensor preprocess and open_clip tokenizer."""

    def __init__(self, scorer: ClipScorer):
        self.scorer = scorer

    def __call__(self, text=None, images=None, return_tensors: str = "pt", padding: bool = True) -> dict:
        out = {}
        if images is not None:
            out["pixel_values"] = torch.cat([self.scorer.preprocess(im) for im in image_list(list(images))])
        if text is not None:
            ids = self.scorer.tokenizer([text] if isinstance(text, str) else list(text))
            out["input_ids"], out["attention_mask"] = ids, (ids != 0).long()
        return out


def clipscore_reference(scorer: ClipScorer, prompt: str, frames) -> float:
    """torchmetrics CLIPScore (0-100) of `prompt` vs every frame, computed with `scorer`'s model."""
    from torchmetrics.multimodal.clip_score import CLIPScore

    metric = CLIPScore(model_name_or_path=lambda: (_OpenClipAsHF(scorer), _OpenClipProcessor(scorer)))
    batch = torch.stack(image_list(frames)).to(scorer.device)  # (N, 3, H, W): one batch for torchmetrics
    with torch.inference_mode():
        metric.update(batch, [prompt] * len(batch))
        return float(metric.compute())
