"""Metrics: CLIP S2V/T2V on a tiny random CLIP, stroke metrics on synthetic frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from flipsketch.errors import MissingWeightsError, UserError
from flipsketch.metrics import (
    TINY_CLIP_CFG,
    ClipScorer,
    TensorPreprocess,
    chamfer_distance,
    clipscore_reference,
    compute_all,
    motion_magnitude,
    otsu_threshold,
    sketch_chamfer,
    stroke_iou,
    stroke_mask,
    temporal_flicker,
)

H = W = 64


def blank(n: int | None = None) -> np.ndarray:
    return np.full((H, W) if n is None else (n, H, W), 255, np.uint8)


def sketch_image() -> np.ndarray:
    img = blank()
    img[20:22, 10:50] = 0  # horizontal stroke
    img[10:50, 30:32] = 0  # vertical stroke
    yy, xx = np.mgrid[:H, :W]
    img[np.abs(np.hypot(yy - 40, xx - 20) - 8) < 1] = 0  # ring
    return img


def moving_frames(n: int = 6, step: int = 2) -> np.ndarray:
    frames = blank(n)
    for t in range(n):
        frames[t] = np.roll(sketch_image(), t * step, axis=1)
    return frames


@pytest.fixture(scope="module")
def scorer() -> ClipScorer:
    return ClipScorer.tiny(seed=0)


# ---------------------------------------------------------------- CLIP metrics


def test_backbone_is_named(scorer):
    assert scorer.backbone == "open_clip:tiny-random(seed=0)"


def test_identical_frames_give_s2v_one(scorer):
    sk = sketch_image()
    assert scorer.s2v(sk, np.repeat(sk[None], 5, axis=0)) == pytest.approx(1.0, abs=1e-5)


def test_frame_order_invariance(scorer):
    frames = moving_frames(7)
    perm = np.random.default_rng(0).permutation(len(frames))
    sk = sketch_image()
    assert scorer.s2v(sk, frames[perm]) == pytest.approx(scorer.s2v(sk, frames), abs=1e-6)
    assert scorer.t2v("a dog", frames[perm]) == pytest.approx(scorer.t2v("a dog", frames), abs=1e-6)


def test_batch_size_invariance(scorer):
    frames = moving_frames(10, step=3)
    one, seven = scorer.encode_images(frames, batch_size=1), scorer.encode_images(frames, batch_size=7)
    assert one.shape == (10, TINY_CLIP_CFG["embed_dim"])
    assert torch.allclose(one, seven, atol=1e-5)
    assert torch.allclose(one.norm(dim=-1), torch.ones(10), atol=1e-5)


def test_input_formats_agree(scorer):
    frames = moving_frames(3)
    ref = scorer.encode_images(frames)  # uint8 (T, H, W) grayscale
    rgb = np.repeat(frames[..., None], 3, axis=-1)  # (T, H, W, 3)
    rgba = np.concatenate([rgb, np.full_like(frames[..., None], 255)], axis=-1)
    chw = torch.from_numpy(rgb).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8 tensor
    for other in (rgb, rgba, chw, [Image.fromarray(f) for f in frames], list(frames)):
        assert torch.allclose(scorer.encode_images(other), ref, atol=1e-6)
    small = frames[:, 16:48, 16:48]  # model size: no resampling, so float input matches exactly
    as_float = torch.from_numpy(small).float() / 255
    assert torch.allclose(scorer.encode_images(as_float), scorer.encode_images(small), atol=1e-5)


def test_preprocess_matches_open_clip_pil_transform():
    import open_clip

    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    pil_pp = open_clip.image_transform(64, is_train=False, mean=mean, std=std)
    ours = TensorPreprocess(64, mean, std)
    img = np.stack([sketch_image()] * 2 + [255 - sketch_image() // 2], axis=-1)
    img = np.concatenate([img, img[:, :40]], axis=1)  # 64 x 104: resize + crop, 3 distinct channels
    big = np.array(Image.fromarray(img).resize((208, 128), Image.NEAREST))  # 128 x 208, downscaled
    for arr in (img, big):
        expected = pil_pp(Image.fromarray(arr))
        got = ours(torch.from_numpy(arr).permute(2, 0, 1))[0]
        assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-6)


def test_skip_first_and_text_batch(scorer):
    sk, frames = sketch_image(), moving_frames(4)
    per = scorer.s2v_per_frame(sk, frames)
    assert scorer.s2v(sk, frames, skip_first=True) == pytest.approx(float(per[1:].mean()), abs=1e-6)
    assert scorer.encode_text(["a cat", "a dog"]).shape == (2, TINY_CLIP_CFG["embed_dim"])
    with pytest.raises(ValueError):
        scorer.s2v(sk, frames[:1], skip_first=True)


def test_tiny_is_deterministic(scorer):
    frames = moving_frames(2)
    again, other = ClipScorer.tiny(seed=0), ClipScorer.tiny(seed=1)
    assert torch.equal(again.encode_images(frames), scorer.encode_images(frames))
    assert not torch.allclose(other.encode_images(frames), scorer.encode_images(frames))


def test_t2v_matches_torchmetrics_clipscore(scorer):
    frames, prompt = moving_frames(5), "a sketch of a running horse"
    per_frame = scorer.t2v_per_frame(prompt, frames)
    assert (per_frame > 0).all()  # CLIPScore clamps at 0; compare where it does not
    reference = clipscore_reference(scorer, prompt, frames)
    assert scorer.t2v(prompt, frames) == pytest.approx(reference / 100, abs=1e-4)


def test_preprocess_resize_crop_and_identity():
    pp = TensorPreprocess(32, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert pp(torch.rand(2, 3, 48, 80)).shape == (2, 3, 32, 32)
    x = torch.rand(3, 32, 32)
    assert torch.allclose(pp(x)[0], (x - 0.5) / 0.5)


def test_missing_local_weights_is_one_line(tmp_path):
    path = tmp_path / "nope" / "clip.safetensors"
    with pytest.raises(MissingWeightsError) as err:
        ClipScorer("ViT-B-32", pretrained=path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg


def test_uncached_tag_is_missing_weights_without_network(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        ClipScorer("ViT-B-32", pretrained="openai", cache_dir=str(tmp_path))
    assert "\n" not in str(err.value) and "openai" in str(err.value)


def test_cached_tag_lookup_is_local(tmp_path):
    from flipsketch.metrics.clip_metrics import _cached_tag_file

    repo = tmp_path / "models--org--clip-repo"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    cfg = {"hf_hub": "org/clip-repo/", "url": "https://example.invalid/x/ViT-Fake.pt"}
    path, where = _cached_tag_file(cfg, str(tmp_path))
    assert path is None and "org/clip-repo" in where and "ViT-Fake.pt" in where
    (tmp_path / "ViT-Fake.pt").write_bytes(b"x")  # open_clip's URL cache layout
    assert _cached_tag_file(cfg, str(tmp_path))[0] == str(tmp_path / "ViT-Fake.pt")
    weights = repo / "snapshots" / "abc123" / "open_clip_model.safetensors"  # HF cache layout
    weights.write_bytes(b"x")
    assert _cached_tag_file(cfg, str(tmp_path))[0] == str(weights)


def test_unknown_tag_and_model_are_user_errors():
    with pytest.raises(UserError):
        ClipScorer("ViT-B-32", pretrained="no-such-tag")
    with pytest.raises(UserError):
        ClipScorer("no-such-model", pretrained=None)


def test_loads_local_checkpoint(tmp_path, scorer):
    import open_clip

    name = "flipsketch-test-tiny"
    (tmp_path / f"{name}.json").write_text(json.dumps(TINY_CLIP_CFG))
    open_clip.add_model_config(tmp_path / f"{name}.json")
    ckpt = tmp_path / "tiny.pt"
    torch.save(scorer.model.state_dict(), ckpt)
    loaded = ClipScorer(name, pretrained=str(ckpt))
    assert loaded.backbone == f"open_clip:{name}/tiny.pt"
    frames = moving_frames(2)
    assert torch.allclose(loaded.encode_images(frames), scorer.encode_images(frames), atol=1e-6)
    assert torch.allclose(loaded.encode_text("a cat"), scorer.encode_text("a cat"), atol=1e-6)


# ---------------------------------------------------------------- stroke metrics


def test_otsu_on_bimodal_image():
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(220, 8, (H, W)), 0, 255).astype(np.uint8)
    img[16:48, 16:48] = np.clip(rng.normal(40, 8, (32, 32)), 0, 255).astype(np.uint8)
    t = otsu_threshold(img)
    assert 80 < t < 180
    mask = stroke_mask(img)
    assert mask[16:48, 16:48].all() and mask.sum() == 32 * 32
    two_valued = np.where(sketch_image() < 128, 0, 255).astype(np.uint8)
    assert otsu_threshold(two_valued) == 128


def test_blank_and_fixed_threshold_masks():
    assert not stroke_mask(blank()).any()
    noisy = blank() - np.random.default_rng(0).integers(0, 5, (H, W)).astype(np.uint8)
    assert not stroke_mask(noisy).any()  # faint noise is not strokes
    assert stroke_mask(sketch_image(), threshold=128).sum() == (sketch_image() < 128).sum()
    assert stroke_mask(moving_frames(3)).shape == (3, H, W)
    rgb = Image.fromarray(sketch_image()).convert("RGB")
    assert np.array_equal(stroke_mask(rgb), stroke_mask(sketch_image()))
    assert np.array_equal(stroke_mask(torch.from_numpy(moving_frames(2))), stroke_mask(moving_frames(2)))


def test_chamfer_self_shift_and_empty():
    line = np.zeros((H, W), bool)
    line[10, 5:60] = True
    assert chamfer_distance(line, line) == 0.0
    for k in (1, 3, 7):
        assert chamfer_distance(line, np.roll(line, k, axis=0)) == pytest.approx(k)
    empty = np.zeros_like(line)
    assert chamfer_distance(empty, empty) == 0.0
    assert chamfer_distance(line, empty) == pytest.approx(np.hypot(H, W))


def test_chamfer_is_exact_on_every_pixel():
    """Every pixel of both masks counts (no subsampling), at exact Euclidean distances: equal to the
    brute-force mean over all pairs, and exactly 1 px for 8192-pixel rows shifted by one row."""
    big = np.zeros((128, 128), bool)
    big[::2, :] = True
    assert chamfer_distance(big, np.roll(big, 1, axis=0)) == 1.0
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 48, 40)) < [[[0.05]], [[0.2]]]
    pa, pb = np.argwhere(a).astype(float), np.argwhere(b).astype(float)
    d = np.sqrt(((pa[:, None] - pb[None]) ** 2).sum(-1))
    brute = 0.5 * (d.min(1).mean() + d.min(0).mean())
    assert chamfer_distance(a, b) == pytest.approx(brute, rel=1e-12)


def test_sketch_chamfer():
    sk = sketch_image()
    assert sketch_chamfer(sk, np.repeat(sk[None], 3, axis=0)) == 0.0
    frames = moving_frames(3)
    assert sketch_chamfer(sk, frames, skip_first=True) > sketch_chamfer(sk, frames[:1]) == 0.0


def test_motion_and_flicker_of_static_video_are_zero():
    static = np.repeat(sketch_image()[None], 5, axis=0)
    assert motion_magnitude(static) == 0.0
    assert temporal_flicker(static) == 0.0
    assert motion_magnitude(static[:1]) == 0.0 and temporal_flicker(static[:1]) == 0.0


def test_motion_and_flicker_of_changing_video():
    frames = blank(4)
    for t in range(4):
        frames[t, 10 + 3 * t, 5:60] = 0  # a horizontal stroke moving down 3 px per frame
    assert motion_magnitude(frames) == pytest.approx(3.0)
    black_white = np.stack([np.zeros((H, W), np.uint8), blank()] * 2)
    assert temporal_flicker(black_white) == pytest.approx(1.0)


def test_dilate_mask_is_the_square_neighbourhood_of_every_frame():
    """(T, H, W) masks grow by a (2r+1)^2 square within each frame, nothing beyond the image."""
    from flipsketch.metrics import dilate_mask

    rng = np.random.default_rng(1)
    masks = rng.random((3, 17, 23)) < 0.03
    for r in (0, 1, 2):
        padded = np.pad(masks, ((0, 0), (r, r), (r, r)))
        want = np.zeros_like(masks)
        for dy in range(2 * r + 1):
            for dx in range(2 * r + 1):
                want |= padded[:, dy : dy + 17, dx : dx + 23]
        assert np.array_equal(dilate_mask(masks, r), want)
        assert np.array_equal(dilate_mask(masks[1], r), want[1])
    one = np.zeros((5, 5), bool)
    one[0, 0] = True
    assert dilate_mask(one, 1).sum() == 4  # the corner: a 2x2 square inside the image


def test_stroke_iou():
    a = np.zeros((H, W), bool)
    a[20, 5:40] = True
    assert stroke_iou(a, a) == 1.0
    far = np.zeros_like(a)
    far[50, 5:40] = True
    assert stroke_iou(a, far) == 0.0
    near = np.roll(a, 1, axis=0)
    assert stroke_iou(a, near, dilate=1) == 1.0
    assert stroke_iou(a, near, dilate=0) == 0.0
    empty = np.zeros_like(a)
    assert stroke_iou(empty, empty) == 1.0 and stroke_iou(a, empty) == 0.0


def test_compute_all_on_static_video(scorer):
    sk = sketch_image()
    out = compute_all(scorer, sk, "a sketch", np.repeat(sk[None], 4, axis=0))
    assert set(out) == {"s2v", "t2v", "chamfer", "motion", "flicker", "frame0_iou", "backbone", "t2v_scorer"}
    assert out["s2v"] == pytest.approx(1.0, abs=1e-5)
    assert out["chamfer"] == out["motion"] == out["flicker"] == 0.0
    assert out["frame0_iou"] == 1.0
    assert out["backbone"] == scorer.backbone and out["t2v_scorer"] == f"{scorer.backbone} per-frame"
    with pytest.raises(ValueError):
        compute_all(scorer, sk[:32], "a sketch", moving_frames(2))


def test_openai_weights_file_without_quickgelu_is_refused(tmp_path, monkeypatch):
    """OpenAI's release run as plain ViT-B-32 would silently use GELU: refused, naming the -quickgelu model."""
    import hashlib

    import open_clip

    from flipsketch.errors import UserError
    from flipsketch.metrics import clip_metrics

    # 1) recognised by content hash (the folder name of open_clip's 'openai' URL)
    blob = tmp_path / "clip.bin"
    blob.write_bytes(b"\0" * 1_200_000)
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    real = open_clip.get_pretrained_cfg

    def fake_cfg(name, tag):
        cfg = dict(real(name, tag) or {})
        if tag == "openai" and name == "ViT-B-32":
            cfg["url"] = f"https://example.invalid/clip/models/{digest}/ViT-B-32.pt"
        return cfg

    monkeypatch.setattr(open_clip, "get_pretrained_cfg", fake_cfg)
    with pytest.raises(UserError, match="ViT-B-32-quickgelu"):
        clip_metrics.load_open_clip("ViT-B-32", str(blob))
    # 2) recognised as a TorchScript archive, whatever its hash
    ts = tmp_path / "ViT-B-32.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(ts))
    assert clip_metrics._is_openai_release(str(ts))
    # an ordinary state-dict checkpoint is not flagged
    sd = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(3)}, sd)
    assert not clip_metrics._is_openai_release(str(sd))
