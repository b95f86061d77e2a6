"""Clip windows as training samples, and the seeded stream of sample ids that feeds them.

A train sample id k is an absolute position in an endless, seeded stream: data epoch k // n uses
its own permutation of the n train clips, and the window start inside the clip is drawn from
(seed, k). So sample k is the same clip and the same frames in every run with that seed, on any
number of workers, and a resumed run only needs to know where in the stream it stopped.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from .rng import PERMUTATION, WINDOW, numpy_rng


def window_indices(total: int, num_frames: int, stride: int, start: int) -> list[int]:
    """Frame indices start, start+stride, ...; clips too short repeat their last frame."""
    return [min(start + i * stride, total - 1) for i in range(num_frames)]


def max_window_start(total: int, num_frames: int, stride: int) -> int:
    return max(0, total - 1 - (num_frames - 1) * stride)


def effective_stride(total: int, num_frames: int, stride: int) -> int:
    """The requested stride, reduced (down to 1) when the clip is too short for it."""
    if num_frames <= 1:
        return stride
    return max(1, min(stride, (total - 1) // (num_frames - 1)))


def frames_to_tensor(frames: np.ndarray, resolution: int) -> torch.Tensor:
    """uint8 grayscale (F, H, W) -> float RGB (F, 3, R, R) in [-1, 1] (white paper = 1)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div(127.5).sub(1.0).unsqueeze(1)
    if x.shape[-2:] != (resolution, resolution):
        x = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
        )
        x = x.clamp(-1.0, 1.0)
    return x.expand(-1, 3, -1, -1).contiguous()


class ClipWindows(Dataset):
    """Windows of `num_frames` frames (every `stride`-th) from clips, with their captions.

    Items are dicts: `caption`, `index` (record), `sample` (stream id) and either `pixel_values`
    (F, 3, R, R) in [-1, 1] or, when `latents` holds one cached (4, T, h, w) tensor per record,
    `latents` (4, F, h, w). Train mode maps stream ids to (permuted clip, random start); eval mode
    takes id = record index and the window starting at frame 0.
    """

    def __init__(
        self,
        records: Sequence[dict],
        load_clip: Callable[[dict], np.ndarray],
        num_frames: int,
        stride: int,
        resolution: int,
        train: bool,
        seed: int = 0,
        latents: Sequence[torch.Tensor] | None = None,
    ):
        if not records:
            raise ValueError("no clips")
        self.records, self.load_clip = list(records), load_clip
        self.num_frames, self.stride, self.resolution = num_frames, stride, resolution
        self.train, self.seed, self.latents = train, seed, latents

    def __len__(self) -> int:
        return len(self.records)

    @functools.lru_cache(maxsize=4)  # noqa: B019 - a handful of epochs, the dataset lives for the run
    def _permutation(self, epoch: int) -> np.ndarray:
        return numpy_rng(self.seed, PERMUTATION, epoch).permutation(len(self.records))

    def locate(self, sample: int) -> tuple[int, int | None]:
        """Stream id -> (record index, window start or None for 'fixed at 0')."""
        if not self.train:
            return sample, 0
        epoch, pos = divmod(sample, len(self.records))
        return int(self._permutation(epoch)[pos]), None

    def _frames(self, index: int, total: int, start: int | None, sample: int) -> list[int]:
        stride = effective_stride(total, self.num_frames, self.stride)
        if start is None:
            start = int(
                numpy_rng(self.seed, WINDOW, sample).integers(
                    0, max_window_start(total, self.num_frames, stride) + 1
                )
            )
        return window_indices(total, self.num_frames, stride, start)

    def __getitem__(self, sample: int) -> dict:
        index, start = self.locate(int(sample))
        item = {"caption": str(self.records[index]["caption"]), "index": index, "sample": int(sample)}
        if self.latents is not None:
            lat = self.latents[index]
            item["latents"] = lat[:, self._frames(index, lat.shape[1], start, sample)].float()
        else:
            clip = self.load_clip(self.records[index])
            item["pixel_values"] = frames_to_tensor(
                clip[self._frames(index, len(clip), start, sample)], self.resolution
            )
        return item


class StreamBatchSampler(Sampler[list[int]]):
    """Batches of stream ids for one rank: global batch b holds ids (b*world + rank)*bs + i.

    One Lightning epoch is `batches_per_epoch` batches. The first iteration starts at batch
    `start` (a resumed run: micro-batches already consumed), later ones continue where the stream
    stopped, so epochs never repeat or skip a batch.
    """

    def __init__(
        self, batches_per_epoch: int, batch_size: int, start: int = 0, rank: int = 0, world_size: int = 1
    ):
        self.batches_per_epoch = max(1, int(batches_per_epoch))
        self.batch_size, self.rank, self.world_size = int(batch_size), int(rank), int(world_size)
        self.next_batch = int(start)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        first = self.next_batch
        end = (first // self.batches_per_epoch + 1) * self.batches_per_epoch
        self.next_batch = end
        for b in range(first, end):
            base = (b * self.world_size + self.rank) * self.batch_size
            yield list(range(base, base + self.batch_size))


def batches_per_epoch(num_records: int, batch_size: int, world_size: int) -> int:
    """One pass over the train clips (the last partial batch rolls into the next epoch)."""
    return max(1, math.floor(num_records / (batch_size * world_size)))


def collate(items: list[dict]) -> dict:
    out = {
        "caption": [it["caption"] for it in items],
        "index": torch.tensor([it["index"] for it in items]),
        "sample": torch.tensor([it["sample"] for it in items]),
    }
    for key in ("pixel_values", "latents"):
        if key in items[0]:
            out[key] = torch.stack([it[key] for it in items])
    return out
