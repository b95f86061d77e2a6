"""Training data: clip windows, the seeded resumable stream, latent caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flipsketch.errors import UserError
from flipsketch.training.data import (
    ClipWindows,
    StreamBatchSampler,
    collate,
    effective_stride,
    frames_to_tensor,
    window_indices,
)
from flipsketch.training.datamodule import SketchClipDataModule
from flipsketch.training.latents import cached_latents, encode_clips


def test_frames_to_tensor_range_shape_and_white_paper():
    frames = np.full((3, 32, 32), 255, np.uint8)
    frames[:, 10:12, :] = 0
    x = frames_to_tensor(frames, 64)
    assert x.shape == (3, 3, 64, 64) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert x[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]  # white paper -> +1
    assert x[0, 0, 21, 5] < 0  # a stroke stays dark after resizing
    assert torch.equal(frames_to_tensor(frames, 32)[0, 0, 10], torch.full((32,), -1.0))


def test_window_indices_and_short_clips():
    assert window_indices(24, 8, 2, 3) == [3, 5, 7, 9, 11, 13, 15, 17]
    assert effective_stride(24, 8, 4) == 3  # reduced so 8 frames fit
    assert window_indices(5, 8, 1, 0) == [0, 1, 2, 3, 4, 4, 4, 4]  # too short: last frame repeats


def test_stream_sampler_resumes_and_shards():
    full = list(StreamBatchSampler(5, 2, start=0))
    again = list(StreamBatchSampler(5, 2, start=0))
    assert full == again and full[0] == [0, 1] and full[4] == [8, 9]
    resumed = StreamBatchSampler(5, 2, start=3)
    assert list(resumed) == full[3:]  # rest of the epoch
    assert list(resumed)[0] == [10, 11]  # the next epoch continues the stream
    r0 = [i for b in StreamBatchSampler(4, 2, rank=0, world_size=2) for i in b]
    r1 = [i for b in StreamBatchSampler(4, 2, rank=1, world_size=2) for i in b]
    assert not set(r0) & set(r1) and sorted(r0 + r1) == list(range(16))


def test_clip_windows_are_a_function_of_the_sample_id(dataset):
    from data_gen.dataset import load_clip, read_metadata

    recs = read_metadata(dataset, "train")
    ds = ClipWindows(recs, lambda r: load_clip(dataset, r), 4, 2, 32, train=True, seed=3)
    a, b = ds[17], ClipWindows(recs, lambda r: load_clip(dataset, r), 4, 2, 32, train=True, seed=3)[17]
    assert a["index"] == b["index"] and torch.equal(a["pixel_values"], b["pixel_values"])
    assert a["pixel_values"].shape == (4, 3, 32, 32)
    # each data epoch visits every clip once
    assert sorted(ds[k]["index"] for k in range(len(recs))) == list(range(len(recs)))
    other_seed = ClipWindows(recs, lambda r: load_clip(dataset, r), 4, 2, 32, train=True, seed=4)
    assert [ds[k]["index"] for k in range(8)] != [other_seed[k]["index"] for k in range(8)]
    val = ClipWindows(recs, lambda r: load_clip(dataset, r), 4, 2, 32, train=False)
    clip = load_clip(dataset, recs[2])
    assert torch.equal(val[2]["pixel_values"], frames_to_tensor(clip[[0, 2, 4, 6]], 32))  # fixed start 0
    batch = collate([ds[0], ds[1]])
    assert batch["pixel_values"].shape == (2, 4, 3, 32, 32) and batch["sample"].tolist() == [0, 1]


def test_datamodule_loaders_and_val_examples(dataset, tiny):
    dm = SketchClipDataModule(root=str(dataset), num_frames=4, batch_size=2, num_workers=0).attach(tiny)
    dm.setup("fit")
    assert dm.resolution == 64 and dm.train_records and dm.val_records
    batch = next(iter(dm.train_dataloader()))
    assert batch["pixel_values"].shape == (2, 4, 3, 64, 64) and len(batch["caption"]) == 2
    val = next(iter(dm.val_dataloader()))
    assert val["index"].tolist() == [0]
    (img, caption), *_ = dm.val_examples(1)
    assert img.size == (64, 64) and img.mode == "RGB" and caption == dm.val_records[0]["caption"]


def test_two_workers_give_the_same_batches(dataset, tiny):
    def batches(workers):
        dm = SketchClipDataModule(root=str(dataset), num_frames=4, batch_size=2, num_workers=workers).attach(
            tiny
        )
        dm.setup("fit")
        return [b["pixel_values"] for b, _ in zip(dm.train_dataloader(), range(3), strict=False)]

    for a, b in zip(batches(0), batches(2), strict=True):
        assert torch.equal(a, b)


def test_latent_cache_matches_the_vae_and_is_reused(dataset, tiny, tmp_path):
    from data_gen.dataset import load_clip, read_metadata

    recs = read_metadata(dataset, "val")[:2]
    load = lambda r: load_clip(dataset, r)  # noqa: E731
    direct = encode_clips(recs, load, tiny, mode="mean")
    assert direct[0].shape == (4, 8, 8, 8)  # (C, T, h, w)
    with torch.no_grad():
        x = frames_to_tensor(load(recs[0]), 64)
        ref = tiny.vae.encode(x).latent_dist.mean * tiny.scaling_factor
    torch.testing.assert_close(direct[0], ref.permute(1, 0, 2, 3), rtol=1e-5, atol=1e-5)
    first = cached_latents(recs, load, tiny, tmp_path, mode="sample", seed=1)
    files = list(tmp_path.glob("latents-*.pt"))
    assert len(files) == 1
    second = cached_latents(recs, load, tiny, tmp_path, mode="sample", seed=1)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    dm = SketchClipDataModule(root=str(dataset), num_frames=4, cache_latents=True, latent_mode="mean").attach(
        tiny
    )
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))  # what validation steps receive: latents, no pixels
    assert batch["latents"].shape == (1, 4, 4, 8, 8) and "pixel_values" not in batch


def test_datamodule_user_errors(tmp_path, tiny):
    with pytest.raises(UserError, match="not set"):
        SketchClipDataModule(root=None).attach(tiny).setup("fit")
    with pytest.raises(UserError, match="not found"):
        SketchClipDataModule(root=str(tmp_path / "nope")).attach(tiny).setup("fit")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metadata.jsonl").write_text("")
    with pytest.raises(UserError, match="no train clips"):
        SketchClipDataModule(root=str(tmp_path / "empty")).attach(tiny).setup("fit")
    with pytest.raises(UserError):
        SketchClipDataModule(root=str(tmp_path), num_frames=0)
