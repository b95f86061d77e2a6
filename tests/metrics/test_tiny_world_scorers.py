"""The tiny-world scorers shipped in assets/tiny_scorers: they load, name themselves, tell drawings
apart (S2V), and a broken scorer folder is one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from flipsketch.errors import UserError
from flipsketch.metrics import ClipScorer, XClipScorer
from flipsketch.metrics.clip_metrics import TINY_WORLD_DIR

SKETCHES = Path(__file__).resolve().parents[2] / "data_gen" / "sketches"
HELDOUT = ("cat", "fish", "bird", "car", "flag", "balloon")


@pytest.fixture(scope="module")
def clip():
    return ClipScorer.tiny_world()


def _drawing(name: str, size: int = 64) -> np.ndarray:
    from data_gen.raster import render_svg_file

    return render_svg_file(SKETCHES / f"{name}.svg", size)


def _moved(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The drawing shifted by (dx, dy) pixels on white: a frame of the same drawing."""
    out = np.full_like(img, 255)
    h, w = img.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = img[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_the_shipped_scorers_name_themselves(clip):
    assert "tiny-world" in clip.backbone and "random" not in clip.backbone
    x = XClipScorer.tiny_world()
    assert "tiny-world" in x.backbone


def test_s2v_is_higher_for_the_same_drawing_than_for_another(clip):
    """On held-out sketches no scorer training saw: the own sketch wins for most moved frames."""
    drawings = {n: _drawing(n) for n in HELDOUT}
    sketches = clip.encode_images([np.stack([d] * 3, -1) for d in drawings.values()])
    wins = 0
    for i, d in enumerate(drawings.values()):
        frames = [np.stack([_moved(d, dx, dy)] * 3, -1) for dx, dy in ((2, 0), (0, -2), (-1, 1))]
        sims = clip.encode_images(frames) @ sketches.T  # (frames, sketches)
        wins += int((sims.argmax(1) == i).sum())
        assert float(sims[:, i].mean()) > float(np.delete(sims.numpy(), i, axis=1).mean())
    assert wins / (3 * len(HELDOUT)) > 0.5  # chance: 1/6


@pytest.mark.parametrize("damage", ["missing", "truncated", "other_size"])
def test_a_broken_scorer_folder_is_one_line(tmp_path, damage):
    folder = tmp_path / "clip"
    shutil.copytree(TINY_WORLD_DIR / "clip", folder)
    weights = next(folder.glob("*.safetensors"))
    if damage == "missing":
        weights.unlink()
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:1000])
    else:  # a config of another width than the weights
        import json

        cfg_file = next(folder.glob("*.json"))
        cfg = json.loads(cfg_file.read_text())
        cfg["model_cfg"]["embed_dim"] *= 2
        cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(UserError) as exc:
        ClipScorer.tiny_world(folder)
    assert "\n" not in str(exc.value) and str(folder) in str(exc.value)
