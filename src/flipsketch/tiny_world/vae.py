"""The VAE stage (and `decoder`: the decoder alone fine-tuned, encoder and latent space fixed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..models.encode import encode_images
from .arch import build_vae
from .domains import render_domain
from .state import ema_update, init_from_folder, load_state, log_row, require, save_state, warmup_lr


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
        init_from_folder(vae, init_dir and init_dir / "vae")
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
    state = load_state(run, {"vae": vae, "ema": ema}, opt)
    step, t0, spent = int(state["step"]), time.time(), float(state.get("seconds", 0.0))
    print(f"vae ({domain}): step {step} -> {steps} (or {minutes} min)", flush=True)
    while step < steps and (time.time() - t0) < minutes * 60:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        seeds = torch.randint(2**31 - 1, (batch,), generator=g).tolist()
        x, _ = render_domain(domain, seeds, 2)
        x = x[:, int(step % 2)].to(device)  # one frame of each clip
        for pg in opt.param_groups:
            pg["lr"] = warmup_lr(step, lr, 50)
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
        ema_update(((vae, ema),), step, 0.99)
        step += 1
        if step % 10 == 0:
            row = {
                "step": step,
                "loss": float(loss_rec.detach()),
                "kl": float(kl.detach()),
                "t": round(time.time() - t0, 1),
            }
            log_row(run, row)
            print(row, flush=True)
        if step % save_every == 0 or step >= steps:
            save_state(run, {"vae": vae, "ema": ema}, opt, step, {"seconds": spent + time.time() - t0})
    save_state(run, {"vae": vae, "ema": ema}, opt, step, {"seconds": spent + time.time() - t0})
    return {"step": step}


def load_trained_vae(run: Path, decoder_run: Path | None = None, domain: str = "doodles"):
    """The EMA VAE of a finished `vae` stage, with its scaling factor set from the latents' spread.

    `decoder_run`: take the weights of a decoder fine-tuning run instead (same encoder) when it exists.
    """
    from safetensors.torch import load_file

    require(run / "state.safetensors", "vae")
    vae = build_vae()
    src = decoder_run if decoder_run is not None and (decoder_run / "state.safetensors").exists() else run
    tensors = load_file(str(src / "state.safetensors"))
    vae.load_state_dict({n[4:]: t for n, t in tensors.items() if n.startswith("ema.")})
    vae.requires_grad_(False).eval()
    prog = json.loads((run / "progress.json").read_text())
    if "scaling_factor" not in prog:
        x, _ = render_domain(domain, range(10_000_000, 10_000_256), 1)
        z = encode_images(vae, x[:, 0], None, chunk=64)  # unscaled: their spread sets the scale
        prog["scaling_factor"] = float(1.0 / z.std())
        (run / "progress.json").write_text(json.dumps(prog, indent=1))
    vae.register_to_config(scaling_factor=prog["scaling_factor"])
    return vae
