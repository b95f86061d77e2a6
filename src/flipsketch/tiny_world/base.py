"""The base stage: CLIPTextModel + UNet3D trained jointly on base-domain clips in the VAE's latents."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..models.encode import encode_images, encode_prompt
from .arch import FRAMES, build_base
from .domains import render_domain
from .state import ema_update, init_from_folder, load_state, log_row, save_state, warmup_lr
from .vae import load_trained_vae


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
    spans: dict[str, tuple[int, ...]] | None = None,
) -> dict:
    from diffusers import DDPMScheduler

    from ..models.tiny import MODELSCOPE_SCHEDULER
    from ..models.tokenizer import build_clip_tokenizer
    from .doodles import MOTION_SPANS

    spans = {k: tuple(v) for k, v in (MOTION_SPANS if spans is None else spans).items()}
    torch.manual_seed(seed)
    vae = load_trained_vae(vae_run, domain=domain)
    sf = float(vae.config.scaling_factor)
    text, unet = build_base()
    if init_dir is not None:
        init_from_folder(text, init_dir / "text_encoder")
        init_from_folder(unet, init_dir / "unet")
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
    state = load_state(run, modules, opt)
    step, t0, spent = int(state["step"]), time.time(), float(state.get("seconds", 0.0))
    spans_json = {k: list(v) for k, v in spans.items()}
    # the step from which clips were cut with these spans (a run may change them when it resumes)
    since = state.get("motion_spans_since", 0) if state.get("motion_spans") == spans_json else step

    def extra() -> dict:
        return {
            "vae_scaling": sf,
            "seconds": spent + time.time() - t0,
            "motion_spans": spans_json,
            "motion_spans_since": since,
        }

    tok = build_clip_tokenizer()
    sched = DDPMScheduler(**{k: v for k, v in MODELSCOPE_SCHEDULER.items() if k != "set_alpha_to_one"})
    acp = sched.alphas_cumprod
    snr = acp / (1 - acp)
    print(
        f"base ({domain}): step {step} -> {steps} (or {minutes} min), vae scaling {sf:.4f}, motion spans {spans}",
        flush=True,
    )
    while step < steps and (time.time() - t0) < minutes * 60:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        seeds = torch.randint(2**31 - 1, (batch,), generator=g).tolist()
        x, caps = render_domain(domain, seeds, FRAMES, spans)
        caps = ["" if float(torch.rand((), generator=g)) < 0.1 else c for c in caps]
        z = encode_images(vae, x.flatten(0, 1), sf, "sample", g)  # posterior noise drawn from g on the CPU
        z = z.unflatten(0, (batch, FRAMES)).permute(0, 2, 1, 3, 4)  # B, C, F, h, w
        noise = torch.randn(z.shape, generator=g).to(device)
        t = torch.randint(0, 1000, (batch,), generator=g)
        zt = sched.add_noise(z, noise, t.to(device))
        for pg in opt.param_groups:
            pg["lr"] = warmup_lr(step, lr, 200)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=str(device).startswith("cuda")):
            emb = encode_prompt(tok, text, caps, device)
            pred = unet(zt, t.to(device), encoder_hidden_states=emb).sample
        w = (torch.clamp(snr[t], max=5.0) / snr[t]).view(-1, 1, 1, 1, 1).to(device)  # min-SNR-5 (epsilon)
        loss = (w * (pred.float() - noise) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema_update(((text, ema_text), (unet, ema_unet)), step, 0.998)
        step += 1
        if step % 10 == 0:
            row = {
                "step": step,
                "loss": float(loss.detach()),
                "gn": float(gn),
                "t": round(time.time() - t0, 1),
            }
            log_row(run, row)
            print(row, flush=True)
        if step % save_every == 0:
            save_state(run, modules, opt, step, extra())
        if step % entropy_every == 0:
            log_row(
                run,
                {
                    "step": step,
                    "attention_entropy": probe_entropy(ema_unet, ema_text, vae, tok, sf, domain, device),
                },
            )
    save_state(run, modules, opt, step, extra())
    return {"step": step}


def probe_entropy(unet, text, vae, tok, sf: float, domain: str, device) -> dict[str, float]:
    """Self-attention entropy ratio of the EMA model on 2 fixed clips at t=500 (tracked while training)."""
    from diffusers import DDPMScheduler

    from ..models.tiny import MODELSCOPE_SCHEDULER
    from .diagnostics import attention_entropy

    x, caps = render_domain(domain, [123_456_789, 987_654_321], FRAMES)
    sched = DDPMScheduler(**{k: v for k, v in MODELSCOPE_SCHEDULER.items() if k != "set_alpha_to_one"})
    with torch.no_grad():
        z = encode_images(vae, x.flatten(0, 1), sf)
        z = z.unflatten(0, (2, FRAMES)).permute(0, 2, 1, 3, 4)
        t = torch.full((2,), 500)
        zt = sched.add_noise(
            z, torch.randn(z.shape, generator=torch.Generator().manual_seed(0)).to(device), t.to(device)
        )
        emb = encode_prompt(tok, text, caps, device)
    ent = attention_entropy(unet, zt, t.to(device), emb)
    print(f"attention entropy / log(n): {ent}", flush=True)
    return ent
