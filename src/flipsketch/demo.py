"""`make demo`: the whole main job end to end on the embedded tiny model, on a CPU.

  1. data     : the project's own 25 SVG sketches animated and rasterised into captioned clips
  2. training : a short rank-4 LoRA run (Lightning) on those clips, exported as safetensors
  3. sampling : FlipSketch and its ablations (no alignment, no composition, C^S / C^T only, lambda 0/1)
                and plain text-to-video, with the trained LoRA, on two shipped sketches, two seeds each
  4. report   : CLIP S2V / T2V (a tiny random CLIP: no download) and stroke metrics as a table,
                written with the GIFs under logs/demo/<time>/

The tiny model has random base weights, so the pictures are noise: the demo shows that every stage
runs and connects, not what the method achieves (that needs real weights; see the README).
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from .errors import report_user_errors


def _stage(n: int, text: str) -> float:
    print(f"\n[{n}/4] {text}", flush=True)
    return time.perf_counter()


@report_user_errors
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    import os

    import torch

    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    torch.set_num_threads(1)  # tiny ops gain nothing from threads and stall on busy cores
    root = Path("logs") / "demo" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    root.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()

    t = _stage(1, "data: shipped SVG sketches -> animated raster clips (data_gen)")
    from data_gen.build import GenConfig, generate

    data = root / "data"
    report = generate(
        GenConfig(
            out=data,
            clips_per_sketch=1,
            frames=8,
            size=64,
            seed=0,
            val_fraction=0.2,
            workers=1,
            progress=False,
        )
    )
    clips = report.get("clips", report) if isinstance(report, dict) else report
    print(f"      {data}  ({time.perf_counter() - t:.1f} s)")

    t = _stage(2, "training: rank-4 LoRA on the tiny UNet3D (Lightning)")
    from .train import finish_wandb, train
    from .training.smoke import compose_train

    cfg = compose_train(
        [
            "experiment=tiny_smoke",
            "logger=csv",
            f"data.root={data.resolve()}",
            "trainer.max_steps=16",
            "trainer.val_check_interval=8",
        ],
        out_dir=(root / "train").resolve(),
    )
    try:
        metrics = train(cfg)
    finally:
        finish_wandb()
    lora = metrics["lora_path"]
    print(f"      LoRA: {lora}  ({time.perf_counter() - t:.1f} s)")

    t = _stage(3, "sampling + metrics: FlipSketch, its ablations and plain text-to-video (flipsketch-eval)")
    from .evaluation import run_eval

    res = run_eval(
        [
            "experiment=tiny_ablation",
            "methods=[full,no_align,no_composition,cs_only,ct_only,lambda0,lambda1,t2v_plain]",
            f"model.lora={Path(lora).resolve()}",
            f"paths.log_dir={root.resolve()}",
            f"paths.output_dir={(root / 'eval').resolve()}",
            "logger=wandb",
        ]
    )
    print(f"      ({time.perf_counter() - t:.1f} s)")

    _stage(4, "report")
    print(res["table"])
    gifs = sorted(Path(res["samples_dir"]).rglob("*.gif"), key=lambda p: ("/full-" not in str(p), str(p)))
    print(f"\n{len(gifs)} GIFs under {res['samples_dir']}, e.g.")
    for g in gifs[:4]:
        print(f"  {g}")
    print(f"tables: {res['results_md']}  {res['results_csv']}")
    print(
        f"dataset clips: {clips if isinstance(clips, int) else len(list((data / 'clips').glob('*.npy')))}; "
        f"total {time.perf_counter() - t_all:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
