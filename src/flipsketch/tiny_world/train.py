"""Train the tiny world from scratch: VAE, then text encoder + UNet3D, on procedural shape clips.

    python -m flipsketch.tiny_world.train --stage vae  --minutes 10
    python -m flipsketch.tiny_world.train --stage base --minutes 60
    python -m flipsketch.tiny_world.train --stage decoder  # sharper decoder, same latent space
    python -m flipsketch.tiny_world.train --stage export   # -> src/flipsketch/assets/tiny_pretrained
    python -m flipsketch.tiny_world.train --stage lora     # sketch LoRA on the shipped sketches

Every stage is resumable: it keeps `state.safetensors` (weights, EMA) + `optim.pt` (optimizer,
loaded with weights_only=True) + `progress.json` under `--run`, saves every `--save-every` steps
and at the end, and a restarted command continues from the last save with the same data stream
(batch k is drawn from seeds derived from k). A stage stops at `--steps` or after `--minutes` of
wall time, whichever comes first; run it again to train further.

Architecture (same classes as ModelScope): AutoencoderKL 4x down (64x64x3 -> 16x16x4),
CLIPTextModel (hidden 32, 2 layers, CLIP BPE tokenizer), UNet3DConditionModel with spatial
self-attention at the working 16x16 resolution, DDIM/DDPM scaled-linear schedule as ModelScope.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from ..errors import report_user_errors
from .shapes import WorldConfig, render_batch

DOMAINS = (
    "doodles",
    "shapes",
)  # doodles: moving line drawings (the default); shapes: the first world's filled shapes


def render_domain(domain: str, seeds, frames: int) -> tuple[torch.Tensor, list[str]]:
    """(B, F, 3, H, W) in [-1, 1] and captions from the chosen base domain."""
    if domain == "doodles":
        from .doodles import render_doodle_batch

        return render_doodle_batch(seeds, RESOLUTION, frames)
    if domain == "shapes":
        return render_batch(seeds, WorldConfig(RESOLUTION, frames))
    raise ValueError(f"unknown domain {domain!r}; choose from {', '.join(DOMAINS)}")


def _init_from_folder(module, folder: Path | None) -> bool:
    """Start `module` from the weights of a diffusers/transformers subfolder (e.g. the shipped model)."""
    if folder is None:
        return False
    from safetensors.torch import load_file

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        return False
    missing, unexpected = module.load_state_dict(load_file(str(files[0])), strict=False)
    if unexpected or len(missing) > 0:
        print(f"init from {folder}: {len(missing)} missing, {len(unexpected)} unexpected keys", flush=True)
    print(f"init from {folder}", flush=True)
    return True


RESOLUTION = 64
FRAMES = 8
TEXT_HIDDEN = 32


def vae_config() -> dict:
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=RESOLUTION,
        scaling_factor=1.0,  # set from the latents' spread after training
    )


def unet_config() -> dict:
    return dict(
        sample_size=RESOLUTION // 4,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=2,  # UNet3D's legacy name: the number of heads (head dim 16 / 32)
    )


def text_config() -> dict:
    from ..models.tiny import tiny_text_config

    return tiny_text_config(TEXT_HIDDEN, 2)


# ---------------------------------------------------------------------------- state files
def _save_state(run: Path, modules: dict, opt, step: int, extra: dict) -> None:
    from safetensors.torch import save_file

    run.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{k}.{n}": t.detach().contiguous().cpu()
        for k, m in modules.items()
        for n, t in m.state_dict().items()
    }
    tmp = run / "state.safetensors.tmp"
    save_file(tensors, str(tmp))
    torch.save(opt.state_dict(), run / "optim.pt.tmp")
    (run / "progress.json.tmp").write_text(json.dumps({"step": step, **extra}, indent=1))
    os.replace(tmp, run / "state.safetensors")
    os.replace(run / "optim.pt.tmp", run / "optim.pt")
    os.replace(run / "progress.json.tmp", run / "progress.json")


def _load_state(run: Path, modules: dict, opt) -> dict:
    from safetensors.torch import load_file

    if not (run / "progress.json").exists():
        return {"step": 0}
    tensors = load_file(str(run / "state.safetensors"))
    for k, m in modules.items():
        m.load_state_dict({n[len(k) + 1 :]: t for n, t in tensors.items() if n.startswith(k + ".")})
    if opt is not None and (run / "optim.pt").exists():
        opt.load_state_dict(torch.load(run / "optim.pt", weights_only=True))
    return json.loads((run / "progress.json").read_text())


def _log(run: Path, row: dict) -> None:
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "log.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def _lr(step: int, base: float, warmup: int) -> float:
    return base * min(1.0, (step + 1) / max(1, warmup))


# ---------------------------------------------------------------------------- VAE
def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(**vae_config())


def train_vae(
    run: Path,
    steps: int,
    minutes: float,
    batch: int,
    lr: float,
    save_every: int,
    seed: int,
    init_from: Path | None = None,
    domain: str = "doodles",
    init_dir: Path | None = None,
    device: str = "cpu",
) -> dict:
    """Train the AutoencoderKL; with `init_from` (a finished vae run) fine-tune its decoder only.

    Decoder-only fine-tuning keeps the encoder, hence the latent space the UNet learnt, unchanged:
    it sharpens the decoded strokes after (or while) the base trains.
    """
    torch.manual_seed(seed)
    vae = build_vae()
    if init_from is not None:
        vae.load_state_dict(load_trained_vae(init_from).state_dict())
        seed += 7919  # a data stream of its own
    else:
        _init_from_folder(vae, init_dir and init_dir / "vae")
    ema = build_vae().requires_grad_(False)
    ema.load_state_dict(vae.state_dict())
    vae.to(device)
    ema.to(device)
    trainable = [
        p
        for n, p in vae.named_parameters()
        if init_from is None or n.startswith(("decoder.", "post_quant_conv."))
    ]
    if init_from is not None:
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    state = _load_state(run, {"vae": vae, "ema": ema}, opt)
    step, t0, spent = int(state["step"]), time.time(), float(state.get("seconds", 0.0))
    print(f"vae ({domain}): step {step} -> {steps} (or {minutes} min)", flush=True)
    while step < steps and (time.time() - t0) < minutes * 60:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        seeds = torch.randint(2**31 - 1, (batch,), generator=g).tolist()
        x, _ = render_domain(domain, seeds, 2)
        x = x[:, int(step % 2)].to(device)  # one frame of each clip
        for pg in opt.param_groups:
            pg["lr"] = _lr(step, lr, 50)
        with torch.set_grad_enabled(init_from is None):
            post = vae.encode(x).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=g).to(device)
        rec = vae.decode(z).sample
        ink = (x[:, :1] < 0.0).float()
        w = 1.0 + 4.0 * ink  # strokes are few pixels: weight them up
        loss_rec = (w * ((rec - x) ** 2 + (rec - x).abs())).mean()
        kl = post.kl().mean() / x[0].numel()
        loss = loss_rec + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        with torch.no_grad():
            d = min(0.99, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), vae.parameters(), strict=True):
                pe.lerp_(p, 1 - d)
        step += 1
        if step % 10 == 0:
            row = {
                "step": step,
                "loss": float(loss_rec.detach()),
                "kl": float(kl.detach()),
                "t": round(time.time() - t0, 1),
            }
            _log(run, row)
            print(row, flush=True)
        if step % save_every == 0 or step >= steps:
            _save_state(run, {"vae": vae, "ema": ema}, opt, step, {"seconds": spent + time.time() - t0})
    _save_state(run, {"vae": vae, "ema": ema}, opt, step, {"seconds": spent + time.time() - t0})
    return {"step": step}


def _require(path: Path, stage: str) -> None:
    from ..errors import UserError

    if not path.exists():
        raise UserError(f"{path} not found: run `--stage {stage}` first (same --run)")


def load_trained_vae(run: Path, decoder_run: Path | None = None, domain: str = "doodles"):
    """The EMA VAE of a finished `vae` stage, with its scaling factor set from the latents' spread.

    `decoder_run`: take the weights of a decoder fine-tuning run instead (same encoder) when it exists.
    """
    from safetensors.torch import load_file

    _require(run / "state.safetensors", "vae")
    vae = build_vae()
    src = decoder_run if decoder_run is not None and (decoder_run / "state.safetensors").exists() else run
    tensors = load_file(str(src / "state.safetensors"))
    vae.load_state_dict({n[4:]: t for n, t in tensors.items() if n.startswith("ema.")})
    vae.requires_grad_(False).eval()
    prog = json.loads((run / "progress.json").read_text())
    if "scaling_factor" not in prog:
        x, _ = render_domain(domain, range(10_000_000, 10_000_256), 1)
        with torch.no_grad():
            z = torch.cat([vae.encode(c[:, 0]).latent_dist.mean for c in x.split(64)])
        prog["scaling_factor"] = float(1.0 / z.std())
        (run / "progress.json").write_text(json.dumps(prog, indent=1))
    vae.register_to_config(scaling_factor=prog["scaling_factor"])
    return vae


# ---------------------------------------------------------------------------- base UNet + text
def build_base():
    from diffusers import UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**text_config())), UNet3DConditionModel(**unet_config())


def train_base(
    run: Path,
    vae_run: Path,
    steps: int,
    minutes: float,
    batch: int,
    lr: float,
    save_every: int,
    seed: int,
    domain: str = "doodles",
    init_dir: Path | None = None,
    device: str = "cpu",
    entropy_every: int = 250,
) -> dict:
    from diffusers import DDPMScheduler

    from ..models.tiny import MODELSCOPE_SCHEDULER
    from ..models.tokenizer import build_clip_tokenizer

    torch.manual_seed(seed)
    vae = load_trained_vae(vae_run, domain=domain)
    sf = float(vae.config.scaling_factor)
    text, unet = build_base()
    if init_dir is not None:
        _init_from_folder(text, init_dir / "text_encoder")
        _init_from_folder(unet, init_dir / "unet")
    ema_text, ema_unet = build_base()
    ema_text.load_state_dict(text.state_dict())
    ema_unet.load_state_dict(unet.state_dict())
    for m in (ema_text, ema_unet):
        m.requires_grad_(False)
    for m in (vae, text, unet, ema_text, ema_unet):
        m.to(device)
    params = list(text.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    modules = {"text": text, "unet": unet, "ema_text": ema_text, "ema_unet": ema_unet}
    state = _load_state(run, modules, opt)
    step, t0, spent = int(state["step"]), time.time(), float(state.get("seconds", 0.0))
    tok = build_clip_tokenizer()
    sched = DDPMScheduler(**{k: v for k, v in MODELSCOPE_SCHEDULER.items() if k != "set_alpha_to_one"})
    acp = sched.alphas_cumprod
    snr = acp / (1 - acp)
    print(f"base ({domain}): step {step} -> {steps} (or {minutes} min), vae scaling {sf:.4f}", flush=True)
    while step < steps and (time.time() - t0) < minutes * 60:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        seeds = torch.randint(2**31 - 1, (batch,), generator=g).tolist()
        x, caps = render_domain(domain, seeds, FRAMES)
        caps = ["" if float(torch.rand((), generator=g)) < 0.1 else c for c in caps]
        with torch.no_grad():
            post = vae.encode(x.flatten(0, 1).to(device)).latent_dist
            z = (post.mean + post.std * torch.randn(post.mean.shape, generator=g).to(device)) * sf
        z = z.unflatten(0, (batch, FRAMES)).permute(0, 2, 1, 3, 4)  # B, C, F, h, w
        noise = torch.randn(z.shape, generator=g).to(device)
        t = torch.randint(0, 1000, (batch,), generator=g)
        zt = sched.add_noise(z, noise, t.to(device))
        ids = tok(caps, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        for pg in opt.param_groups:
            pg["lr"] = _lr(step, lr, 200)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=str(device).startswith("cuda")):
            emb = text(ids.to(device))[0]
            pred = unet(zt, t.to(device), encoder_hidden_states=emb).sample
        w = (torch.clamp(snr[t], max=5.0) / snr[t]).view(-1, 1, 1, 1, 1).to(device)  # min-SNR-5 (epsilon)
        loss = (w * (pred.float() - noise) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            d = min(0.998, (1 + step) / (10 + step))
            for src, dst in ((text, ema_text), (unet, ema_unet)):
                for pe, p in zip(dst.parameters(), src.parameters(), strict=True):
                    pe.lerp_(p, 1 - d)
        step += 1
        if step % 10 == 0:
            row = {
                "step": step,
                "loss": float(loss.detach()),
                "gn": float(gn),
                "t": round(time.time() - t0, 1),
            }
            _log(run, row)
            print(row, flush=True)
        if step % save_every == 0:
            _save_state(run, modules, opt, step, {"vae_scaling": sf, "seconds": spent + time.time() - t0})
        if step % entropy_every == 0:
            _log(
                run,
                {
                    "step": step,
                    "attention_entropy": _probe_entropy(ema_unet, ema_text, vae, tok, sf, domain, device),
                },
            )
    _save_state(run, modules, opt, step, {"vae_scaling": sf, "seconds": spent + time.time() - t0})
    return {"step": step}


def _probe_entropy(unet, text, vae, tok, sf: float, domain: str, device) -> dict[str, float]:
    """Self-attention entropy ratio of the EMA model on 2 fixed clips at t=500 (tracked while training)."""
    from diffusers import DDPMScheduler

    from ..models.tiny import MODELSCOPE_SCHEDULER
    from .diagnostics import attention_entropy

    x, caps = render_domain(domain, [123_456_789, 987_654_321], FRAMES)
    sched = DDPMScheduler(**{k: v for k, v in MODELSCOPE_SCHEDULER.items() if k != "set_alpha_to_one"})
    with torch.no_grad():
        z = vae.encode(x.flatten(0, 1).to(device)).latent_dist.mean * sf
        z = z.unflatten(0, (2, FRAMES)).permute(0, 2, 1, 3, 4)
        t = torch.full((2,), 500)
        zt = sched.add_noise(
            z, torch.randn(z.shape, generator=torch.Generator().manual_seed(0)).to(device), t.to(device)
        )
        ids = tok(caps, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        emb = text(ids.to(device))[0]
    ent = attention_entropy(unet, zt, t.to(device), emb)
    print(f"attention entropy / log(n): {ent}", flush=True)
    return ent


# ---------------------------------------------------------------------------- export + LoRA
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "assets" / "tiny_pretrained"


def _progress(run: Path) -> dict:
    prog = json.loads((run / "progress.json").read_text())
    if "seconds" not in prog and (run / "log.jsonl").exists():  # older runs: the log's last time
        rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
        prog["seconds"] = float(rows[-1]["t"]) if rows else 0.0
    return prog


def export_base(run: Path, out: Path) -> Path:
    """Write the EMA VAE + text encoder + UNet3D (safetensors) and the CLIP tokenizer as a diffusers folder."""
    import shutil

    from diffusers import DDIMScheduler
    from safetensors.torch import load_file

    from ..models.components import Components
    from ..models.loaders import save_pipeline_folder
    from ..models.tiny import MODELSCOPE_SCHEDULER
    from ..models.tokenizer import build_clip_tokenizer

    vae = load_trained_vae(run / "vae", run / "decoder")
    _require(run / "base" / "state.safetensors", "base")
    text, unet = build_base()
    tensors = load_file(str(run / "base" / "state.safetensors"))
    text.load_state_dict({n[len("ema_text.") :]: t for n, t in tensors.items() if n.startswith("ema_text.")})
    unet.load_state_dict({n[len("ema_unet.") :]: t for n, t in tensors.items() if n.startswith("ema_unet.")})
    comps = Components(
        tokenizer=build_clip_tokenizer(),
        text_encoder=text,
        vae=vae,
        unet=unet,
        scheduler=DDIMScheduler(**MODELSCOPE_SCHEDULER),
        name="tiny_pretrained",
        source=str(out),
        resolution=RESOLUTION,
    )
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_pipeline_folder(comps, tmp)  # tokenizer/ too: plain diffusers loads the folder as it is
    shutil.rmtree(out, ignore_errors=True)  # a new base invalidates the old sketch LoRA
    os.replace(tmp, out)
    write_model_card(run, out)
    return out


def train_lora(run: Path, out: Path, steps: int, overrides: list[str]) -> Path:
    """The sketch LoRA (the Lightning trainer, `experiment=tiny_world_lora`) on the exported base."""
    import shutil

    from ..models.lora import LORA_FILENAME
    from ..train import finish_wandb, train
    from ..training.smoke import compose_train

    _require(out / "unet", "export")
    lora_run = run / "lora"
    shutil.rmtree(lora_run, ignore_errors=True)
    t0 = time.time()
    cfg = compose_train(
        [
            "experiment=tiny_world_lora",
            f"model.path={out.resolve()}",
            f"trainer.max_steps={steps}",
            *overrides,
        ],
        out_dir=lora_run.resolve(),
    )
    try:
        metrics = train(cfg)
    finally:
        finish_wandb()
    (out / "lora").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(metrics["lora_path"], out / "lora" / (LORA_FILENAME + ".tmp"))
    os.replace(out / "lora" / (LORA_FILENAME + ".tmp"), out / "lora" / LORA_FILENAME)
    (lora_run / "progress.json").write_text(
        json.dumps({"step": steps, "seconds": time.time() - t0, "overrides": overrides}, indent=1)
    )
    write_model_card(run, out)
    return out / "lora" / LORA_FILENAME


def entropy_track(run: Path) -> str:
    """The base stage's logged attention-entropy probes, as 'step N: spatial a / temporal b; ...'."""
    log = run / "base" / "log.jsonl"
    if not log.exists():
        return "not measured"
    rows = [json.loads(x) for x in log.read_text().splitlines() if "attention_entropy" in x]
    if not rows:
        return "not measured"
    pick = rows if len(rows) <= 6 else [rows[int(i * (len(rows) - 1) / 5)] for i in range(6)]
    return "; ".join(
        f"step {r['step']}: spatial {r['attention_entropy'].get('spatial', float('nan')):.3f} / "
        f"temporal {r['attention_entropy'].get('temporal', float('nan')):.3f}"
        for r in pick
    )


def write_model_card(run: Path, out: Path) -> Path:
    """MODEL_CARD.md beside the weights: data, architecture, steps, commands, wall time, sizes."""
    from . import HELDOUT_SKETCHES
    from .doodles import PHRASES as DOODLE_PHRASES

    def stage(name: str, missing: str = "not trained yet") -> str:
        if not (run / name / "progress.json").exists():
            return missing
        p = _progress(run / name)
        return f"{p['step']} steps, {p.get('seconds', 0) / 60:.1f} min wall time"

    files = sorted(out.rglob("*.safetensors"))
    sizes = "\n".join(f"| `{f.relative_to(out)}` | {f.stat().st_size / 1e6:.2f} MB |" for f in files)
    total = sum(f.stat().st_size for f in files) / 1e6
    n_params = {}
    for sub, cls in (
        ("unet", "UNet3DConditionModel"),
        ("vae", "AutoencoderKL"),
        ("text_encoder", "CLIPTextModel"),
    ):
        f = (
            out
            / sub
            / ("diffusion_pytorch_model.safetensors" if sub != "text_encoder" else "model.safetensors")
        )
        if f.exists():
            from safetensors import safe_open

            with safe_open(str(f), framework="pt") as h:
                n_params[sub] = (cls, sum(math.prod(h.get_slice(k).get_shape()) for k in h.keys()))
    arch = "\n".join(f"| {sub} | `{cls}` | {n / 1e6:.2f} M |" for sub, (cls, n) in n_params.items())
    text = f"""# tiny_pretrained: the project's own small text-to-video model

Trained on 2 CPU cores by `make tiny-world` (the stages of `python -m flipsketch.tiny_world.train`).
It has the same component classes as ModelScope text-to-video-ms-1.7b, so every code path that
FlipSketch runs on the real model runs here too. Load it with `model=tiny_pretrained`.

| component | class | parameters |
|---|---|---|
{arch}
| tokenizer | `CLIPTokenizer` (CLIP BPE, built offline from open_clip's vocabulary; not stored) | - |
| scheduler | `DDIMScheduler` (ModelScope's: 1000 steps, scaled_linear 0.00085..0.012, epsilon) | - |

64x64 RGB frames (grey drawings), VAE 4x down to 4x16x16 latents (scaling factor set from the latents'
spread), spatial self-attention at 16x16 and 8x8, text hidden size {TEXT_HIDDEN}.

## Data
- **Base (VAE, text encoder, UNet3D): moving doodles.** Procedural line drawings drawn on the fly by
  `flipsketch.tiny_world.doodles`: creatures (a body outline, head, eye, legs, tail, ears), houses,
  flags, stars, flowers, cars, waves, spirals, scribbles and outlined shapes, as cubic Bezier strokes
  0.7-1.9 px wide, moved by `data_gen`'s motion programs ({", ".join(DOODLE_PHRASES)}) and rasterised by
  its cairo renderer; the caption names a subject and the motion ("a doodle of a cat jumping").
  {FRAMES} frames per clip, 10% empty captions (for classifier-free guidance). No shipped sketch is used.
- **Sketch LoRA (`lora/`):** rank 4 on the UNet attention projections, trained with the project's
  Lightning trainer (`experiment=tiny_world_lora`) on `data_gen` clips of the shipped sketches
  (black strokes on white), leaving out the held-out sketches {", ".join(HELDOUT_SKETCHES)}.

## Lineage
The VAE, text encoder and UNet3D continue from the first tiny_pretrained (the `--init` of the vae and
base stages), which was trained from scratch here on filled, grey and textured moving shapes
(`flipsketch.tiny_world.shapes`, `--domain shapes`): VAE 550 steps + decoder 300 steps (25 min), base
1,360 steps (72 min). That model drew filled blobs; the doodle stages below retrained it on line drawings.

## Training (this model's stages)
| stage | what | steps and wall time (2 cores) |
|---|---|---|
| vae | AutoencoderKL on doodle frames, L1 + L2 (strokes weighted x5) + 1e-4 KL, AdamW 5e-4, batch 16 frames, EMA 0.99 | {stage("vae")} |
| decoder | optional: the VAE decoder alone fine-tuned (encoder and latent space fixed) | {stage("decoder", "not run for this model")} |
| base | CLIPTextModel + UNet3D jointly on moving doodles, epsilon loss, min-SNR-5 weighting, AdamW 1e-3, batch 4 clips of 8 frames, EMA 0.998 | {stage("base")} |
| lora | rank-4 LoRA, `experiment=tiny_world_lora` | {stage("lora")} |

Self-attention sharpness of the base while it trained (entropy / log(sequence length), EMA weights,
t=500; 1 = uniform): {entropy_track(run)}.

Commands: `make tiny-world` runs, in order,
`python -m flipsketch.tiny_world.train --stage vae --init src/flipsketch/assets/tiny_pretrained`,
`--stage base --init ...`, `--stage export`, `--stage lora` (each resumable: rerun after a stop to
continue; `TINY_WORLD_STEPS` / `TINY_WORLD_MINUTES` bound the base stage). On a GPU,
`make tiny-world-gpu` (`experiments/gpu_tiny_world.py`) runs every stage within 9 minutes.

Sample it at the schedule it was tuned for, `sampler=tiny_world` (10 DDIM steps, stronger frame
alignment); `make evidence` measures identity, motion, ink and frame 0 on the held-out sketches, and
the README's tiny-world section shows the numbers and a contact sheet.

## Files ({total:.1f} MB of safetensors)
| file | size |
|---|---|
{sizes}

Licence: MIT, like the project; trained only on data the project generates itself.
"""
    (out / "MODEL_CARD.md").write_text(text)
    return out / "MODEL_CARD.md"


def _init_source(folder: Path) -> Path:
    """Copy an --init model folder aside: export overwrites the shipped folder it usually names."""
    import shutil
    import tempfile

    from ..errors import UserError

    if not (folder / "unet").is_dir() and not (folder / "vae").is_dir():
        raise UserError(f"--init {folder}: not a model folder (no unet/ or vae/)")
    dst = Path(tempfile.mkdtemp(prefix="tiny_world_init_"))
    for sub in ("vae", "unet", "text_encoder"):
        if (folder / sub).is_dir():
            shutil.copytree(folder / sub, dst / sub)
    return dst


@report_user_errors
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=["vae", "base", "decoder", "export", "lora"], required=True)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="where export/lora write the model folder")
    p.add_argument("--run", default="runs/tiny_world", help="folder for the stages' resumable state")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="stop at this step (vae 600, decoder 300, base 20000, lora 150)",
    )
    p.add_argument("--minutes", type=float, default=1e9, help="stop after this much wall time")
    p.add_argument("--batch", type=int, default=None, help="per step: vae/decoder 16 frames, base 4 clips")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="vae/decoder/base: cpu or cuda (bf16 autocast on cuda)")
    p.add_argument(
        "--domain", choices=DOMAINS, default="doodles", help="base-domain clips (default: doodles)"
    )
    p.add_argument(
        "--init",
        default=None,
        help="vae/base: start from the weights of this model folder (e.g. the shipped tiny_pretrained) "
        "instead of random ones; ignored when the stage resumes its own state",
    )
    p.add_argument("overrides", nargs="*", help="lora stage: extra Hydra overrides for flipsketch-train")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    run = Path(a.run)
    init = _init_source(Path(a.init)) if a.init else None
    try:
        if a.stage == "vae":
            train_vae(
                run / "vae",
                a.steps or 600,
                a.minutes,
                a.batch or 16,
                a.lr or 1e-3,
                a.save_every,
                a.seed,
                domain=a.domain,
                init_dir=init,
                device=a.device,
            )
        elif a.stage == "decoder":
            train_vae(
                run / "decoder",
                a.steps or 300,
                a.minutes,
                a.batch or 16,
                a.lr or 5e-4,
                a.save_every,
                a.seed,
                run / "vae",
                domain=a.domain,
                device=a.device,
            )
        elif a.stage == "base":
            train_base(
                run / "base",
                run / "vae",
                a.steps or 20000,
                a.minutes,
                a.batch or 4,
                a.lr or 1e-3,
                a.save_every,
                a.seed,
                domain=a.domain,
                init_dir=init,
                device=a.device,
            )
        elif a.stage == "export":
            print(f"exported {export_base(run, Path(a.out))}")
        else:
            print(f"sketch LoRA: {train_lora(run, Path(a.out), a.steps or 150, a.overrides)}")
    finally:
        if init is not None:  # the private copy of the --init weights
            import shutil

            shutil.rmtree(init, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
