"""Screenshots of flipsketch-app before, during and after a run (docs/app.md, docs/img/).

    .venv/bin/python experiments/app_screenshots.py --out docs/img [--steps 10 --frames 10]

Serves the page on 127.0.0.1 (model=tiny_pretrained on the CPU), drives Debian's chromium headless
with playwright: uploads data_gen's balloon sketch (an SVG, read by the safe rasteriser), runs the
shipped model's schedule and saves app_before.png, app_during.png (the progress bar mid-run) and
app_after.png (GIF, animated SVG, MP4, frames). Needs `make app-install`.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]


def shrink(path: Path, limit: int = 300_000) -> None:
    """Keep a screenshot under `limit` bytes (palette PNG, then halve until it fits)."""
    img = Image.open(path).convert("RGB")
    while True:
        img.quantize(colors=128).save(path, optimize=True)
        if path.stat().st_size <= limit or img.width < 400:
            return
        img = img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.Resampling.LANCZOS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--sketch", type=Path, default=ROOT / "data_gen" / "sketches" / "balloon.svg")
    ap.add_argument("--prompt", default="a balloon floating up")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from flipsketch.app import FlipSketchApp, build_demo, launch

    args.out.mkdir(parents=True, exist_ok=True)
    app = FlipSketchApp(["device=cpu"], Path(tempfile.mkdtemp(prefix="flipsketch-shots-")))
    demo = build_demo(app)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(demo, app, "127.0.0.1", port, block=False)
    try:
        with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 1000},
            )  # fmt: skip
            page = ctx.new_page()
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            page.wait_for_selector("#animate", timeout=30_000)
            page.set_input_files("#upload input[type=file]", str(args.sketch))
            page.fill("#prompt textarea", args.prompt)
            for sel, value in (("#steps", args.steps), ("#frames-n", args.frames)):
                page.fill(f"{sel} input[type=number]", str(value))
                page.press(f"{sel} input[type=number]", "Enter")
            page.wait_for_timeout(1000)
            shots = {}
            shots["before"] = args.out / "app_before.png"
            page.screenshot(path=str(shots["before"]), full_page=True)
            page.click("#animate")
            page.wait_for_function(
                "() => parseFloat(document.querySelector('#progress .run-progress')?.dataset.percent) >= 30"
                " && document.querySelector('#progress .run-progress').dataset.state === 'running'",
                timeout=600_000,
            )
            shots["during"] = args.out / "app_during.png"
            page.screenshot(path=str(shots["during"]), full_page=True)
            page.wait_for_function(
                "() => /Done in|Error:/.test(document.querySelector('#status').innerText)", timeout=900_000
            )
            page.wait_for_function("() => document.querySelector('#gif img')?.naturalWidth > 0")
            page.wait_for_timeout(1500)
            shots["after"] = args.out / "app_after.png"
            page.screenshot(path=str(shots["after"]), full_page=True)
            print(page.inner_text("#status"))
            ctx.close()
    finally:
        demo.close()
    for path in shots.values():
        shrink(path)
        print(path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
