"""`make demo`: the whole main job end to end on the project's own small model, on a CPU.

1. data     : the project's own SVG sketches animated and rasterised into captioned clips (data_gen),
              the held-out evaluation sketches left out
2. training : a short rank-4 LoRA run (Lightning) on those clips, on top of model=tiny_pretrained
              (VAE + text encoder + UNet3D trained here from scratch on moving shapes, then adapted
              to sketches), exported as safetensors
3. sampling : FlipSketch and its ablations (no alignment, no composition, lambda 1) and plain
              text-to-video, with that LoRA, on held-out sketches the model never saw
4. report   : stroke metrics (Chamfer to the sketch, motion, frame-0 IoU) and CLIP S2V / T2V (a tiny
              random CLIP: no download, so those two columns mean nothing) as a table, written with
              the GIFs under logs/demo/<time>/

  python -m flipsketch.demo                    # the default above, a few minutes on 2 cores
  python -m flipsketch.demo --model tiny       # random tiny model: seconds, shows only that stages connect
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from .errors import report_user_errors

# What each model's demo runs: training overrides, eval overrides, and the sketches sampled.
PROFILES = {
    "tiny_pretrained": {
        "train": [
            "experiment=tiny_world_lora",
            "model.sketch_lora=true",  # continue from the shipped sketch LoRA (fused)
            "trainer.max_steps=12",
            "data.generate.clips_per_sketch=6",  # the recipe's 24 would only slow the demo's 12 steps
            "trainer.val_check_interval=6",
            "module.optimizer.lr=2.0e-4",
            "module.lr_scheduler.warmup_steps=2",
            "data.batch_size=2",
            "callbacks.sample_videos.num_samples=0",
            "callbacks.model_checkpoint.every_n_train_steps=6",
        ],
        "eval": [
            "experiment=tiny_world_evidence",
            "methods=[full,no_align,no_composition,lambda1,t2v_plain]",
            "benchmark.only=[balloon,fish]",
            "seeds=[0]",
            "sampler=tiny_world",  # 10 steps, stronger alignment (conf/sampler/tiny_world.yaml)
        ],
    },
    "tiny": {
        "train": [
            "experiment=tiny_smoke",
            "trainer.max_steps=16",
            "trainer.val_check_interval=8",
        ],
        "eval": [
            "experiment=tiny_ablation",
            "methods=[full,no_align,no_composition,t2v_plain]",  # only that the stages connect
            "benchmark.only=[cat]",
        ],
    },
}


# Every profile: no model-summary table (its "Total FLOPs: 0" means nothing for a LoRA run) and a
# logging interval within the demo's short epochs (Lightning warns otherwise).
QUIET_TRAIN = ["+trainer.enable_model_summary=false", "trainer.log_every_n_steps=3"]


def _item_progress():
    """The evaluation's one line per sampled item ([k/total] method sketch seed: scores, seconds)
    on stdout: the sampling stage takes minutes and should not look stuck. Returns the undo."""
    import logging

    lg = logging.getLogger("flipsketch.evaluation")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("      %(message)s"))
    saved = lg.level, lg.propagate
    lg.addHandler(handler)
    lg.setLevel(logging.INFO)
    lg.propagate = False

    def undo() -> None:
        lg.removeHandler(handler)
        lg.setLevel(saved[0])
        lg.propagate = saved[1]

    return undo


def _stage(n: int, text: str) -> float:
    print(f"\n[{n}/4] {text}", flush=True)
    return time.perf_counter()


@report_user_errors
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m flipsketch.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model", choices=sorted(PROFILES), default="tiny_pretrained", help="default: tiny_pretrained"
    )
    p.add_argument("--out", default="logs/demo", help="parent folder of the run folder (default logs/demo)")
    p.add_argument(
        "--threads",
        default="auto",
        help="torch CPU threads (default auto: the cores free at start, flipsketch.threads)",
    )
    a = p.parse_args(sys.argv[1:] if argv is None else list(argv))
    import os

    from .threads import use_threads

    threads = use_threads(a.threads, "--threads")  # chosen once: later stages would see our own load
    prof = PROFILES[a.model]
    if a.model == "tiny_pretrained":  # fail in one line before any work when the weights are absent
        from .errors import MissingWeightsError
        from .models.registry import TINY_PRETRAINED_DIR

        if not (TINY_PRETRAINED_DIR / "lora").is_dir():
            raise MissingWeightsError(
                f"tiny_pretrained: no weights at {TINY_PRETRAINED_DIR}; build them with `make tiny-world` "
                "or run `python -m flipsketch.demo --model tiny`"
            )
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    root = Path(a.out) / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    root.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()

    t = _stage(1, "data: shipped SVG sketches -> animated raster clips (data_gen)")
    from data_gen.build import GenConfig, generate

    from .tiny_world import HELDOUT_SKETCHES

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
            exclude=list(HELDOUT_SKETCHES),
        )
    )
    clips = report.get("clips", report) if isinstance(report, dict) else report
    print(f"      {data}  ({time.perf_counter() - t:.1f} s)")

    t = _stage(2, f"training: rank-4 LoRA on model={a.model} (Lightning)")
    from .training.task import compose_train, finish_wandb, train

    cfg = compose_train(
        [*prof["train"], *QUIET_TRAIN, "logger=csv", f"data.root={data.resolve()}"],
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

    undo = _item_progress()
    try:
        res = run_eval(
            [
                *prof["eval"],
                f"model.lora={Path(lora).resolve()}",
                f"threads={threads}",
                f"paths.log_dir={root.resolve()}",
                f"paths.output_dir={(root / 'eval').resolve()}",
                "logger=wandb",
            ]
        )
    finally:
        undo()
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
