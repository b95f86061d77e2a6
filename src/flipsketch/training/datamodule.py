"""LightningDataModule over a `data_gen` clip dataset (metadata.jsonl + clips/*.npy).

    dm = SketchClipDataModule(root="data/clips", num_frames=8, batch_size=1)
    dm.attach(components)          # model resolution; the VAE when latents are cached
    trainer.fit(module, datamodule=dm)

Train batches come from a seeded stream of clip windows (random start per sample) that a resumed
run re-enters exactly where it stopped; validation uses the val split's first `num_frames` frames.
With `generate` set and no dataset at `root`, a small dataset is built there first (tiny_smoke).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from PIL import Image
from torch.utils.data import DataLoader

from ..errors import UserError
from .data import ClipWindows, StreamBatchSampler, batches_per_epoch, collate
from .latents import cached_latents


class ResumableDataLoader(DataLoader):
    """A DataLoader that tells Lightning it can resume mid-epoch.

    Its position needs no saved state: `SketchClipDataModule.train_dataloader` recomputes it from the
    restored `trainer.global_step`, so the state dict is empty.
    """

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class SketchClipDataModule(pl.LightningDataModule):
    def __init__(
        self,
        root: str | None = None,
        num_frames: int = 8,
        stride: int = 1,
        resolution: int | None = None,
        batch_size: int = 1,
        val_batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
        max_val_clips: int | None = 8,
        cache_latents: bool = False,
        cache_dir: str | None = None,
        latent_mode: str = "sample",
        generate: dict | None = None,
    ):
        super().__init__()
        if num_frames < 1 or stride < 1 or batch_size < 1:
            raise UserError("data.num_frames, data.stride and data.batch_size must be >= 1")
        if latent_mode not in ("sample", "mean"):
            raise UserError(f"data.latent_mode must be 'sample' or 'mean', got {latent_mode!r}")
        self.root = None if root is None else Path(str(root))
        self.generate = dict(generate) if generate else None
        if self.root is None and self.generate and self.generate.get("out"):
            self.root = Path(str(self.generate["out"]))
        self.num_frames, self.stride, self.resolution = num_frames, stride, resolution
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.num_workers, self.pin_memory, self.seed = num_workers, pin_memory, seed
        self.max_val_clips = max_val_clips
        self.cache_latents, self.cache_dir, self.latent_mode = cache_latents, cache_dir, latent_mode
        self.components = None
        self.train_records: list[dict] = []
        self.val_records: list[dict] = []
        self._latents: dict[str, list] = {}

    # ------------------------------------------------------------------ wiring
    def attach(self, components) -> SketchClipDataModule:
        """Take the model resolution (unless set) and, for latent caching, its VAE."""
        self.components = components
        if self.resolution is None:
            self.resolution = components.resolution
        elif self.cache_latents and self.resolution != components.resolution:
            raise UserError(
                f"data.resolution={self.resolution} differs from the model's {components.resolution}"
            )
        return self

    def _read(self):
        from data_gen.dataset import load_clip, read_metadata

        return read_metadata, load_clip

    def load_clip(self, record: dict) -> np.ndarray:
        return self._read()[1](self.root, record)

    # ------------------------------------------------------------------ stages
    def prepare_data(self) -> None:
        if self.generate and self.root is not None and not (self.root / "metadata.jsonl").is_file():
            from data_gen.build import generate
            from data_gen.settings import gen_config

            from .feedback import say

            settings = {"progress": False, **self.generate, "out": str(self.root)}
            say(f"building the training clips in {self.root} (data_gen; once, reused by later runs) ...")
            t0 = time.perf_counter()
            generate(gen_config(settings, prefix="data.generate."))
            say(f"dataset built in {time.perf_counter() - t0:.0f} s")

    def setup(self, stage: str | None = None) -> None:
        if self.train_records or self.val_records:
            return
        if self.root is None:
            raise UserError(
                "data.root is not set: build a dataset with `python -m data_gen out=DIR`, then data.root=DIR"
            )
        if not self.root.is_dir():
            raise UserError(
                f"dataset folder not found: {self.root} (build one with `python -m data_gen out=DIR`)"
            )
        if self.resolution is None:
            raise UserError("data.resolution is unknown: call attach(components) or set data.resolution")
        read_metadata = self._read()[0]
        try:
            rows = read_metadata(self.root)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read the dataset in {self.root}: {exc}") from exc
        self.train_records = [r for r in rows if r.get("split", "train") == "train"]
        self.val_records = [r for r in rows if r.get("split") == "val"][: self.max_val_clips]
        if not self.train_records:
            raise UserError(f"{self.root} holds no train clips (metadata.jsonl has {len(rows)} rows)")
        if self.cache_latents:
            if self.components is None:
                raise UserError("data.cache_latents needs the model: call attach(components) first")
            # Lightning calls setup() before it moves the model: encode on the run's device anyway
            device = self.trainer.strategy.root_device if self.trainer is not None else None
            from .feedback import say

            say(
                f"VAE latents of {len(self.train_records)} train + {len(self.val_records)} val clips "
                f"({'read from / cached in ' + str(self.cache_dir) if self.cache_dir else 'encoded in memory'}) ..."
            )
            t0 = time.perf_counter()
            for name, recs in (("train", self.train_records), ("val", self.val_records)):
                self._latents[name] = (
                    cached_latents(
                        recs,
                        self.load_clip,
                        self.components,
                        self.cache_dir,
                        self.latent_mode,
                        self.seed,
                        device,
                    )
                    if recs
                    else []
                )
            say(f"latents ready in {time.perf_counter() - t0:.0f} s")

    def train_sources(self) -> list[dict]:
        """{name: source file stem, sha256: of its bytes when data_gen recorded it} per train source."""
        seen = {}
        for r in self.train_records:
            src = r.get("source")
            if src:
                seen[str(src)] = {"name": Path(str(src)).stem, "sha256": r.get("source_sha256")}
        return sorted(seen.values(), key=lambda d: (d["name"], d["sha256"] or ""))

    def _dataset(self, split: str) -> ClipWindows:
        recs = self.train_records if split == "train" else self.val_records
        return ClipWindows(
            recs,
            self.load_clip,
            self.num_frames,
            self.stride,
            self.resolution,
            split == "train",
            self.seed,
            self._latents.get(split),
        )

    def _world(self) -> tuple[int, int, int]:
        """(consumed micro-batches, rank, world size) from the attached trainer."""
        t = self.trainer
        if t is None:
            return 0, 0, 1
        return int(t.global_step) * int(t.accumulate_grad_batches), int(t.global_rank), int(t.world_size)

    def train_dataloader(self) -> DataLoader:
        start, rank, world = self._world()
        sampler = StreamBatchSampler(
            batches_per_epoch(len(self.train_records), self.batch_size, world),
            self.batch_size,
            start,
            rank,
            world,
        )
        return ResumableDataLoader(
            self._dataset("train"),
            batch_sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=collate,
            persistent_workers=False,
        )

    def val_dataloader(self) -> DataLoader | list:
        if not self.val_records:
            return []
        return DataLoader(
            self._dataset("val"),
            batch_size=self.val_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=collate,
        )

    # ------------------------------------------------------------------ sampling inputs
    def val_examples(self, count: int) -> list[tuple[Image.Image, str]]:
        """(first frame as an RGB sketch at the model resolution, caption) of the first val clips
        (train clips when there is no val split)."""
        if not (self.train_records or self.val_records):
            self.setup("validate")
        recs = (self.val_records or self.train_records)[:count]
        out = []
        for rec in recs:
            clip = self.load_clip(rec)
            img = Image.fromarray(np.asarray(clip[0])).convert("RGB")
            if img.size != (self.resolution, self.resolution):
                img = img.resize((self.resolution, self.resolution), Image.Resampling.LANCZOS)
            out.append((img, str(rec["caption"])))
        return out
