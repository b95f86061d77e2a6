"""Build the README's picture from real `flipsketch-animate` runs: an animated GIF and a contact strip.

Each run is given as SKETCH=RUN_DIR (the sketch image the run animated and its `out=` folder). The GIF
shows, per run, the sketch above its animation; the strip shows the sketch and then every frame.
Frames are enlarged with nearest-neighbour scaling, so the pixels are the model's own.

    python experiments/readme_picture.py --gif docs/img/readme_demo.gif --strip docs/img/readme_strip.png \
        /tmp/fish.png=/tmp/out_fish /tmp/bird.png=/tmp/out_bird /tmp/cat.png=/tmp/out_cat
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

GAP = 4


def load_run(spec: str, seed: int) -> tuple[Image.Image, list[Image.Image]]:
    sketch, _, run = spec.partition("=")
    frames = sorted((Path(run) / f"seed{seed}" / "frames").glob("*.png"))
    if not frames:
        raise SystemExit(f"error: no frames in {run}/seed{seed}/frames")
    return Image.open(sketch).convert("L"), [Image.open(f).convert("L") for f in frames]


# PIL, not torchvision's make_grid: it would frame the strip and grey its white gaps between rows
def row(images: list[Image.Image], size: int) -> Image.Image:
    out = Image.new("L", (len(images) * size + (len(images) - 1) * GAP, size), 225)
    for i, im in enumerate(images):
        out.paste(im, (i * (size + GAP), 0))
    return out


def column(images: list[Image.Image]) -> Image.Image:
    w = images[0].width
    out = Image.new("L", (w, sum(im.height for im in images) + (len(images) - 1) * GAP), 225)
    y = 0
    for im in images:
        out.paste(im, (0, y))
        y += im.height + GAP
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="SKETCH=RUN_DIR")
    ap.add_argument("--gif", type=Path, required=True)
    ap.add_argument("--strip", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gif-size", type=int, default=192)
    ap.add_argument("--strip-size", type=int, default=128)
    ap.add_argument("--ms", type=int, default=100, help="milliseconds per GIF frame (10 fps, as the runs)")
    args = ap.parse_args(argv)
    runs = [load_run(spec, args.seed) for spec in args.runs]
    n = min(len(frames) for _, frames in runs)

    def fit(im: Image.Image, size: int, sketch: bool) -> Image.Image:
        return im.resize((size, size), Image.Resampling.LANCZOS if sketch else Image.Resampling.NEAREST)

    gif = []
    for k in range(n):
        # one column per run: the sketch above, the animation's frame k below
        columns = [column([fit(s, args.gif_size, True), fit(fr[k], args.gif_size, False)]) for s, fr in runs]
        canvas = Image.new(
            "L", (sum(c.width for c in columns) + 6 * GAP * (len(columns) - 1), columns[0].height), 255
        )
        for i, c in enumerate(columns):
            canvas.paste(c, (i * (c.width + 6 * GAP), 0))
        gif.append(canvas.convert("P"))
    args.gif.parent.mkdir(parents=True, exist_ok=True)
    gif[0].save(args.gif, save_all=True, append_images=gif[1:], duration=args.ms, loop=0, optimize=True)

    rows = [
        row(
            [fit(s, args.strip_size, True)] + [fit(f, args.strip_size, False) for f in fr[:n]],
            args.strip_size,
        )
        for s, fr in runs
    ]
    strip = Image.new("L", (rows[0].width, sum(r.height for r in rows) + GAP * (len(rows) - 1)), 255)
    for i, r in enumerate(rows):
        strip.paste(r, (0, i * (args.strip_size + GAP)))
    strip.save(args.strip, optimize=True)
    print(f"{args.gif} ({args.gif.stat().st_size} bytes), {args.strip} ({args.strip.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
