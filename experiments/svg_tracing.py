"""Vector output: tracing cost per frame and fidelity of the traced SVG, on real frames of the
shipped small model (model=tiny_pretrained at its own schedule, sampler=tiny_world).

Each held-out sketch is animated by flipsketch-animate (frames kept unbinarised), then binarised as
output.binarize does, at 64 px (binarize_upscale=1, the default) and 256 px (binarize_upscale=4),
and every frame is traced (flipsketch.vector.trace_frame). Fidelity: IoU of the SVG re-rasterised by
CairoSVG against the binarised frame's ink, at the frame's size and at 4x (against the frame upscaled
nearest-neighbour, which also scores the curves between pixel centres).

  python experiments/svg_tracing.py                  # 3 sketches x 1 seed, ~5 min on 2 CPU cores
  python experiments/svg_tracing.py --sketches balloon bird --steps 4 --no-align   # quicker, rougher frames
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def animate_frames(sketch_svg: Path, prompt: str, work: Path, steps: int | None, align: bool) -> np.ndarray:
    import cairosvg

    from flipsketch.animate import animate
    from flipsketch.cli import compose_config, with_model_sampler

    png = work / f"{sketch_svg.stem}.png"
    cairosvg.svg2png(url=str(sketch_svg), write_to=str(png), output_width=256, output_height=256)
    overrides = [f"sketch={png}", f"out={work / sketch_svg.stem}", "device=cpu", "progress=false"]
    overrides += ["output.binarize=false", "output.formats=[png]", f"sampler.align={str(align).lower()}"]
    if steps:
        overrides.append(f"sampler.num_inference_steps={steps}")
    cfg = compose_config("animate", with_model_sampler("animate", overrides))
    cfg.prompt = prompt
    (folder,) = animate(cfg)
    return np.stack(
        [np.asarray(Image.open(p).convert("RGB")) for p in sorted((folder / "frames").glob("*.png"))]
    )


def measure(frames: np.ndarray) -> list[dict]:
    from flipsketch.vector import frame_svg, iou, rasterize_svg, trace_frame

    rows = []
    for f in frames:
        ink = f == 0
        t = time.perf_counter()
        d, view = trace_frame(f)
        ms = (time.perf_counter() - t) * 1000
        h, w = f.shape
        svg = frame_svg(d, view, (w, h))
        big = np.repeat(np.repeat(ink, 4, axis=0), 4, axis=1)
        rows.append(
            {
                "ms": ms,
                "iou": iou(rasterize_svg(svg, (w, h)), ink),
                "iou4x": iou(rasterize_svg(svg, (4 * w, 4 * h)), big),
                "svg_bytes": len(svg.encode()),
            }
        )
    return rows


def main() -> None:
    import json

    from flipsketch.ink import binarize

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sketches", nargs="+", default=["balloon", "bird", "boat"])
    ap.add_argument("--steps", type=int, default=None, help="default: the model's schedule")
    ap.add_argument("--no-align", action="store_true")
    args = ap.parse_args()
    captions = json.loads((REPO / "data_gen" / "sketches" / "captions.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        raw = {}
        for name in args.sketches:
            prompt = captions.get(name) if isinstance(captions.get(name), str) else f"a {name} moving"
            t = time.perf_counter()
            raw[name] = animate_frames(
                REPO / "data_gen" / "sketches" / f"{name}.svg",
                prompt,
                Path(tmp),
                args.steps,
                not args.no_align,
            )
            print(f"{name}: {len(raw[name])} frames sampled in {time.perf_counter() - t:.0f} s ({prompt!r})")
    print(f"\n{'frames':>10} {'n':>4} {'trace ms/frame':>15} {'IoU':>6} {'IoU@4x':>7} {'SVG KB':>7}")
    for upscale in (1, 4):
        rows = [r for v in raw.values() for r in measure(binarize(v, upscale))]
        side = next(iter(raw.values())).shape[1] * upscale
        ms = np.array([r["ms"] for r in rows])
        print(
            f"{f'{side} px':>10} {len(rows):>4} {np.median(ms):>8.1f} (p90 {np.percentile(ms, 90):.0f})"
            f" {np.mean([r['iou'] for r in rows]):>6.3f} {np.mean([r['iou4x'] for r in rows]):>7.3f}"
            f" {np.mean([r['svg_bytes'] for r in rows]) / 1024:>7.1f}"
        )


if __name__ == "__main__":
    main()
