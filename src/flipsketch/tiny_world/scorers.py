"""Train the tiny world's scorers: an open_clip CLIP for S2V and an X-CLIP for T2V (`make tiny-scorers`).

CLIP: image-image InfoNCE between a drawing's frame 0 and one of its moved frames (binarised like
FlipSketch's output, shifted a few pixels), plus image-text InfoNCE on the captions. X-CLIP: for
each clip (8 of its frames after frame 0, binarised), cross-entropy over one caption per motion
program. Resumable per scorer under `--run/<clip|xclip>/` (state.py's files), bounded by `--minutes`;
`--out` gets model.safetensors + config json per scorer and MODEL_CARD.md with held-out quality.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import scorer_data as sd
from .state import load_state, log_row, read_progress, save_state, warmup_lr

CLIP_CFG = dict(
    embed_dim=64,
    vision_cfg=dict(image_size=64, patch_size=8, width=96, layers=3, head_width=32),
    text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
XCLIP_CFG = dict(
    text_config=dict(
        vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=77,
    ),
    vision_config=dict(
        image_size=64, patch_size=8, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_frames=8, mit_hidden_size=64, mit_intermediate_size=128,
        mit_num_hidden_layers=1, mit_num_attention_heads=2,
    ),
    projection_dim=64, prompt_layers=1, prompt_num_attention_heads=2,
)  # fmt: skip
POOL_SEED0 = 0  # training doodles: seeds POOL_SEED0 .. + pool; evaluation doodles from EVAL_SEED0
EVAL_SEED0 = 50_000_000


def build_clip(seed: int = 0):
    import open_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return open_clip.CLIP(**CLIP_CFG)


def _clip_pixels(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W) uint8 grey -> the ClipScorer preprocess of a 64 px image (no resize needed)."""
    x = (x.float() / 255.0)[:, None].expand(-1, 3, -1, -1)
    mean, std = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1), torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _jitter(x: np.ndarray, rng: np.random.Generator, px: int) -> np.ndarray:
    dy, dx = rng.integers(-px, px + 1, 2)
    return np.roll(x, (int(dy), int(dx)), axis=(0, 1))


def clip_batch(pool, step: int, batch: int):
    """(anchors, positives, captions) of one step, deterministic in `step`."""
    clips, caps = pool
    rng = np.random.default_rng(1_000 + step)
    idx = rng.choice(len(clips), size=min(batch, len(clips)), replace=False)
    a, p = [], []
    for i in idx:
        a.append(_jitter(clips[i, 0], rng, 1))
        fr = clips[i, int(rng.integers(1, clips.shape[1]))]
        fr = sd.binarise(fr[None])[0] if rng.random() < 0.8 else fr
        p.append(_jitter(fr, rng, 3))
    return torch.from_numpy(np.stack(a)), torch.from_numpy(np.stack(p)), [caps[i] for i in idx]


def clip_loss(model, tokenizer, a, p, caps) -> torch.Tensor:
    ea = F.normalize(model.encode_image(_clip_pixels(a)), dim=-1)
    ep = F.normalize(model.encode_image(_clip_pixels(p)), dim=-1)
    et = F.normalize(model.encode_text(tokenizer(caps)), dim=-1)
    scale = model.logit_scale.exp().clamp(max=100)
    target = torch.arange(len(a))
    ii = scale * ea @ ep.T
    it = scale * ep @ et.T
    nce = (F.cross_entropy(ii, target) + F.cross_entropy(ii.T, target)) / 2
    return nce + 0.5 * (F.cross_entropy(it, target) + F.cross_entropy(it.T, target)) / 2


def build_xclip(seed: int = 0):
    from transformers import XCLIPConfig, XCLIPModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return XCLIPModel(XCLIPConfig(**XCLIP_CFG))


def xclip_processor():
    from transformers import CLIPTokenizer, VideoMAEImageProcessor, XCLIPProcessor

    from ..models.registry import TINY_PRETRAINED_DIR

    side = XCLIP_CFG["vision_config"]["image_size"]
    tok = CLIPTokenizer.from_pretrained(str(Path(TINY_PRETRAINED_DIR) / "tokenizer"))
    images = VideoMAEImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    return XCLIPProcessor(image_processor=images, tokenizer=tok)


def xclip_pixels(clips: np.ndarray, processor) -> torch.Tensor:
    """(B, F, H, W) uint8 -> (B, 8, 3, H, W): frames after frame 0, 8 evenly (XClipScorer's sampling)."""
    n = clips.shape[1] - 1
    idx = 1 + np.round(np.linspace(0, n - 1, 8)).astype(np.int64)
    ip = processor.image_processor
    mean = torch.tensor(ip.image_mean).view(1, 1, 3, 1, 1)
    std = torch.tensor(ip.image_std).view(1, 1, 3, 1, 1)
    x = torch.from_numpy(clips[:, idx]).float()[:, :, None].expand(-1, -1, 3, -1, -1) / 255.0
    return (x - mean) / std


def motion_captions(caption: str, program: str, rng: np.random.Generator | None) -> list[str]:
    """The caption with its motion phrase replaced by one phrase of each program (random or first)."""
    from .doodles import PHRASES

    base = next(
        caption[: -len(ph)] for ph in sorted(PHRASES[program], key=len, reverse=True) if caption.endswith(ph)
    )
    pick = (lambda phs: phs[int(rng.integers(len(phs)))]) if rng is not None else (lambda phs: phs[0])
    return [base + pick(PHRASES[p]) for p in PHRASES]


def xclip_batch(pool, step: int, batch: int):
    from .doodles import PHRASES

    clips, caps, progs = pool
    rng = np.random.default_rng(2_000 + step)
    idx = rng.choice(len(clips), size=min(batch, len(clips)), replace=False)
    video = np.stack([sd.binarise(clips[i]) if rng.random() < 0.8 else clips[i] for i in idx])
    names = list(PHRASES)
    j = int(idx[0])
    texts = motion_captions(caps[j], progs[j], rng)  # one wording for the whole batch's 14 classes
    return video, texts, torch.tensor([names.index(progs[i]) for i in idx])


def xclip_loss(model, processor, video, texts, target) -> torch.Tensor:
    tok = processor.tokenizer(texts, padding=True, return_tensors="pt")
    out = model(
        input_ids=tok["input_ids"],
        attention_mask=tok["attention_mask"],
        pixel_values=xclip_pixels(video, processor),
    )
    return F.cross_entropy(out.logits_per_video, target)


def train(which: str, run: Path, pool, steps: int, minutes: float, batch: int, lr: float) -> dict:
    """Train one scorer up to `steps` (or `minutes` of this call), resuming from `run`."""
    import open_clip

    model = build_clip() if which == "clip" else build_xclip()
    helper = open_clip.get_tokenizer("ViT-B-32") if which == "clip" else xclip_processor()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    prog = load_state(run, {"model": model}, opt)
    step, seconds = int(prog["step"]), float(prog.get("seconds", 0.0))
    t0 = time.monotonic()
    model.train()
    while step < steps and (time.monotonic() - t0) < minutes * 60:
        for g in opt.param_groups:
            g["lr"] = warmup_lr(step, lr, 50)
        if which == "clip":
            loss = clip_loss(model, helper, *clip_batch(pool, step, batch))
        else:
            loss = xclip_loss(model, helper, *xclip_batch(pool, step, batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 25 == 0 or step == steps:
            t = seconds + time.monotonic() - t0
            log_row(run, {"step": step, "loss": round(loss.item(), 4), "t": round(t, 1)})
            print(f"{which} step {step} loss {loss.item():.3f} ({t:.0f} s)", flush=True)
        if step % 100 == 0:
            save_state(run, {"model": model}, opt, step, {"seconds": seconds + time.monotonic() - t0})
    save_state(run, {"model": model}, opt, step, {"seconds": seconds + time.monotonic() - t0})
    return {"model": model.eval(), "helper": helper, **read_progress(run)}


@torch.no_grad()
def s2v_retrieval(model, clips: np.ndarray, owner: np.ndarray) -> float:
    """Top-1: for each moved, binarised frame, is its own sketch's frame 0 the nearest sketch?"""
    model.eval()
    firsts = {int(o): clips[np.flatnonzero(owner == o)[0], 0] for o in np.unique(owner)}
    keys = sorted(firsts)
    ref = F.normalize(
        model.encode_image(_clip_pixels(torch.from_numpy(np.stack([firsts[k] for k in keys])))), dim=-1
    )
    hits = total = 0
    for c, o in zip(clips, owner, strict=True):
        fr = torch.from_numpy(sd.binarise(c[1:]))
        emb = F.normalize(model.encode_image(_clip_pixels(fr)), dim=-1)
        hits += int((torch.tensor(keys)[(emb @ ref.T).argmax(1)] == int(o)).sum())
        total += len(fr)
    return hits / total


@torch.no_grad()
def t2v_accuracy(model, processor, n: int) -> float:
    """Top-1 motion caption among one per program, on doodles of unseen seeds (binarised)."""
    from .doodles import PHRASES

    clips, caps, progs = sd.doodle_pool(range(EVAL_SEED0, EVAL_SEED0 + n))
    names, hits = list(PHRASES), 0
    for i in range(n):
        texts = motion_captions(caps[i], progs[i], None)
        tok = processor.tokenizer(texts, padding=True, return_tensors="pt")
        out = model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                    pixel_values=xclip_pixels(sd.binarise(clips[i])[None], processor))  # fmt: skip
        hits += int(int(out.logits_per_video.argmax(1)) == names.index(progs[i]))
    return hits / n


def save_clip(model, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    sd_ = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(sd_, str(folder / "model.safetensors"), metadata={"class": "open_clip.CLIP"})
    pp = dict(size=64, mean=OPENAI_MEAN, std=OPENAI_STD, interpolation="bicubic", resize_mode="shortest")
    cfg = {"model_cfg": CLIP_CFG, "preprocess_cfg": pp, "tokenizer": "ViT-B-32", "name": "tiny-world"}
    (folder / "open_clip_config.json").write_text(json.dumps(cfg, indent=1))


def save_xclip(model, processor, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(folder)  # safetensors, float16 (a few MB)
    model.float()
    processor.save_pretrained(folder)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m flipsketch.tiny_world.scorers", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--run", type=Path, default=Path("runs/tiny_scorers"))
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "tiny_scorers"
    )
    ap.add_argument("--which", choices=("clip", "xclip", "both"), default="both")
    ap.add_argument("--minutes", type=float, default=20.0, help="per scorer, this call")
    ap.add_argument("--clip-steps", type=int, default=1500)
    ap.add_argument("--xclip-steps", type=int, default=1500)
    ap.add_argument("--pool", type=int, default=3000, help="doodle clips rendered into memory")
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument(
        "--unseen", type=Path, default=None, help="third-party data (live_sketch_svg/, flipsketch_examples/)"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from .scorer_card import write_card

    t = time.monotonic()
    clips, caps, progs = sd.doodle_pool(range(POOL_SEED0, POOL_SEED0 + args.pool))
    sc, scap, _ = sd.svg_clips(sd.training_sketches(), 14, seed=3)
    print(
        f"rendered {len(clips)} doodle + {len(sc)} sketch clips in {time.monotonic() - t:.0f} s", flush=True
    )
    quality: dict = {}
    if args.which in ("clip", "both"):
        pool = (np.concatenate([clips, sc]), caps + scap)
        res = train("clip", args.run / "clip", pool, args.clip_steps, args.minutes, args.batch, 1e-3)
        save_clip(res["model"], args.out / "clip")
        sets = sd.unseen_sets(args.unseen)
        quality["clip"] = {"steps": res["step"], "seconds": res["seconds"],
                           "s2v_top1": {k: s2v_retrieval(res["model"], *v) for k, v in sets.items()},
                           "sketches": {k: int(len(np.unique(v[1]))) for k, v in sets.items()}}  # fmt: skip
    if args.which in ("xclip", "both"):
        res = train(
            "xclip", args.run / "xclip", (clips, caps, progs), args.xclip_steps, args.minutes, 32, 1e-3
        )
        save_xclip(res["model"], res["helper"], args.out / "xclip")
        quality["xclip"] = {"steps": res["step"], "seconds": res["seconds"],
                            "t2v_top1": t2v_accuracy(res["model"], res["helper"], 280), "clips": 280}  # fmt: skip
    write_card(
        args.out, quality, " ".join(["python -m flipsketch.tiny_world.scorers", *(argv or sys.argv[1:])])
    )
    print(json.dumps(quality, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
