"""Every training stage of model=tiny_pretrained in one command, sized for one GPU and a time budget.

    python experiments/gpu_tiny_world.py --out /tmp/tw --minutes 9            # on a lent GPU
    python experiments/gpu_tiny_world.py --out /tmp/tw --device cpu --smoke    # the same path on a CPU, seconds

Stages, in order, each resumable under `--run` (default: <out>/run):
  vae     AutoencoderKL on doodle frames (from `--init`'s VAE when given)
  base    CLIPTextModel + UNet3D on moving doodles (from `--init`'s weights when given), bf16 autocast on
          a GPU, with a batch and step count scaled to the budget
  export  the EMA weights as a diffusers folder at `--out`
  lora    the rank-4 sketch LoRA through the Lightning trainer (`trainer=gpu` on a GPU)
Then `--out` is a complete model folder: load it with `model=tiny_pretrained model.path=OUT`, and copy
it over src/flipsketch/assets/tiny_pretrained to ship it. The budget is split 10% VAE, 80% base,
10% LoRA and export; each stage stops at its share of wall time (or its step count, whichever first).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="model folder to write (weights, lora/, MODEL_CARD.md)")
    p.add_argument("--run", default=None, help="resumable stage state (default: <out>.run)")
    p.add_argument("--minutes", type=float, default=9.0, help="wall-time budget for all stages")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument(
        "--init", default=None, help="start vae/base from this model folder (e.g. the shipped one)"
    )
    p.add_argument(
        "--smoke", action="store_true", help="a few steps of each stage, tiny batches: checks the path"
    )
    a = p.parse_args(argv)
    out = Path(a.out).resolve()
    run = Path(a.run).resolve() if a.run else out.with_name(out.name + ".run")
    gpu = a.device.startswith("cuda")
    if a.smoke:
        vae_steps, base_steps, lora_steps, vae_batch, base_batch = 2, 2, 2, 2, 1
    elif gpu:  # an H200-class GPU: large batches; the stage stops at its minutes anyway
        vae_steps, base_steps, lora_steps, vae_batch, base_batch = 3000, 100_000, 600, 64, 32
    else:  # the CPU recipe of `make tiny-world`
        from flipsketch.tiny_world.lora import LORA_STEPS

        vae_steps, base_steps, lora_steps, vae_batch, base_batch = 450, 100_000, LORA_STEPS, 16, 4
    base_lr = 1e-3 * (base_batch / 4) ** 0.5 if not a.smoke else 1e-3
    init = ["--init", a.init] if a.init else []
    tw = [sys.executable, "-m", "flipsketch.tiny_world", "--run", str(run), "--device", a.device]
    budget = a.minutes
    t0 = time.time()

    def step(args: list[str]) -> None:
        print("+", " ".join(args), flush=True)
        subprocess.run(args, check=True)

    step(
        [
            *tw,
            "--stage",
            "vae",
            "--steps",
            str(vae_steps),
            "--batch",
            str(vae_batch),
            "--minutes",
            str(0.1 * budget),
            *init,
        ]
    )
    left = budget - (time.time() - t0) / 60
    step(
        [*tw, "--stage", "base", "--steps", str(base_steps), "--batch", str(base_batch), "--lr", f"{base_lr:.2e}",
         "--minutes", str(max(0.1, left - 0.1 * budget)), "--save-every", "200", *init]
    )  # fmt: skip
    step([*tw, "--stage", "export", "--out", str(out)])
    lora = [*tw, "--stage", "lora", "--out", str(out), "--steps", str(lora_steps)]
    if gpu:
        lora.append("trainer=gpu")
    if a.smoke:
        lora += ["data.generate.clips_per_sketch=1", "data.batch_size=1", "callbacks.sample_videos.num_samples=0",
                 "trainer.val_check_interval=1000"]  # fmt: skip
    step(lora)
    print(f"model folder: {out} ({(time.time() - t0) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
