"""flipsketch-app in a real browser: Debian's chromium (headless) driven by playwright against the
page served on 127.0.0.1, on the shipped small model (model=tiny_pretrained) on the CPU.

Skipped with a reason when chromium or the app extra (gradio, playwright) is missing; under CI
(CI=true) they fail instead, since `make test` installs both (the Makefile's app-install target).
FLIPSKETCH_SCREENSHOTS=DIR keeps the pages' screenshots there (the README's comes from the slow test).
"""

import io
import os
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import draw_sketch

CHROMIUM = os.environ.get("FLIPSKETCH_CHROMIUM", "/usr/bin/chromium")
# headless on a closed network: without the networking flags chromium waits on services it cannot reach
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAST = {"steps": 2, "frames": 4}  # the real pipeline at its smallest: 2 steps, 4 frames, alignment off


def _missing() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"no chromium at {CHROMIUM} (make chromium: apt-get install chromium)"
    for mod in ("gradio", "playwright.sync_api"):
        try:
            __import__(mod)
        except ImportError:
            return f"the app extra is missing ({mod}): make app-install"
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    reason = _missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    from flipsketch.app import FlipSketchApp, build_demo, launch

    app = FlipSketchApp(["device=cpu"], tmp_path_factory.mktemp("results"))
    demo = build_demo(app)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(demo, app, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(
            profile,  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1000},
        )
        yield ctx
        ctx.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    outside = []
    page.on(
        "request", lambda r: None if r.url.startswith((server, "data:", "blob:")) else outside.append(r.url)
    )
    page.goto(server, wait_until="load")
    page.wait_for_selector("#animate", timeout=30_000)
    yield page
    assert outside == [], f"the page asked for remote assets: {outside[:3]}"
    page.close()


def _keep(page, name):
    folder = os.environ.get("FLIPSKETCH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def _png_file(tmp_path, name="sketch.png") -> Path:
    path = tmp_path / name
    draw_sketch(96).save(path)
    return path


def _settings(page, prompt, steps, frames, align=False):
    page.fill("#prompt textarea", prompt)
    for sel, value in (("#steps", steps), ("#frames-n", frames)):
        page.fill(f"{sel} input[type=number]", str(value))
        page.press(f"{sel} input[type=number]", "Enter")
    (page.check if align else page.uncheck)("#align input[type=checkbox]")


def _status(page, timeout=240_000) -> str:  # generous: CI machines may be busy
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "() => /Done in|Error:/.test(document.querySelector('#status').innerText)", timeout=timeout
        )
    except PlaywrightTimeout:
        _keep(page, "timeout.png")
        raise AssertionError(
            f"no result after {timeout / 1000:.0f} s; the page says: {page.inner_text('body')[:500]!r}"
        ) from None
    return page.inner_text("#status")


def _dark_fraction(png: bytes) -> float:
    return float((np.asarray(Image.open(io.BytesIO(png)).convert("L")) < 128).mean())


def test_upload_animate_shows_gif_mp4_svg_and_frames(page, tmp_path):
    page.set_input_files("#upload input[type=file]", str(_png_file(tmp_path)))
    _settings(page, "a ball bouncing", **FAST)
    page.click("#animate")
    page.wait_for_selector("#progress .run-progress", timeout=30_000)  # the progress bar
    status = _status(page)
    assert status.startswith("Done in") and "4 frames" in status, status
    # the GIF and every frame are shown (decoded images, not broken links)
    page.wait_for_function("() => document.querySelector('#gif img')?.naturalWidth > 0")
    assert "animation.gif" in page.get_attribute("#gif img", "src")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#frames img')].filter(i => i.naturalWidth > 0).length >= 4"
    )
    # the MP4 is playable here (H.264 in Debian's chromium): its metadata loads
    page.wait_for_function("() => document.querySelector('#mp4 video')?.readyState >= 1", timeout=20_000)
    assert page.evaluate("document.querySelector('#mp4 video').duration") == pytest.approx(0.4, abs=0.05)
    # the animated SVG renders and plays: at t the group of frame floor(t * fps) alone is visible
    svg = page.locator("#svg-anim svg")
    assert page.evaluate("document.querySelectorAll('#svg-anim svg > g').length") == 4
    shots = []
    for k in range(4):
        page.evaluate(
            f"() => {{ const s = document.querySelector('#svg-anim svg'); s.pauseAnimations(); "
            f"s.setCurrentTime({k / 10 + 0.05}); }}"
        )
        visible = page.evaluate(
            "() => [...document.querySelectorAll('#svg-anim svg > g')]"
            ".map(g => getComputedStyle(g).visibility === 'visible')"
        )
        assert visible == [i == k for i in range(4)], (k, visible)
        shots.append(svg.screenshot())
        assert 0.001 < _dark_fraction(shots[-1]) < 0.6  # ink on white, not a blank or black box
    assert len(set(shots)) > 1  # the frames differ on screen
    assert "Traceback" not in page.content()
    _keep(page, "app_result.png")


# Every change of the page's progress bar, recorded in the page (no polling races): percent and text.
RECORD_PROGRESS = """() => {
  window.__progress = [];
  const seen = () => {
    const el = document.querySelector('#progress .run-progress');
    if (!el) return;
    const rec = {state: el.dataset.state, percent: parseFloat(el.dataset.percent), text: el.innerText};
    const last = window.__progress[window.__progress.length - 1];
    if (!last || last.text !== rec.text || last.state !== rec.state) window.__progress.push(rec);
  };
  new MutationObserver(seen).observe(document.querySelector('#progress'),
    {subtree: true, childList: true, attributes: true, characterData: true});
  seen();
}"""


def test_the_page_progress_moves_through_the_steps_to_100(page, tmp_path):
    """A real tiny run (3 steps, 4 frames, alignment 2 iterations): the page's own progress bar
    advances monotonically from below 50% to 100%, naming the step and the alignment iteration."""
    page.set_input_files("#upload input[type=file]", str(_png_file(tmp_path)))
    _settings(page, "a ball bouncing", steps=3, frames=4, align=True)
    page.evaluate(RECORD_PROGRESS)
    page.click("#animate")
    status = _status(page)
    assert status.startswith("Done in"), status
    seen = page.evaluate("window.__progress")
    running = [r for r in seen if r["state"] == "running"]
    assert seen[0]["state"] == "idle" and seen[-1]["state"] == "done", seen
    assert seen[-1]["percent"] == 100.0 and "100%" in seen[-1]["text"], seen[-1]
    assert len(running) >= 3, seen  # several moments of the run, not just the start and the end
    percents = [r["percent"] for r in running] + [seen[-1]["percent"]]
    assert percents == sorted(percents), percents  # never backwards
    assert percents[0] < 50.0, percents
    assert any("step 1/3" in r["text"] for r in running), [r["text"] for r in running]
    assert any("step" in r["text"] and "aligning" in r["text"] for r in running), running
    assert any(50.0 <= p < 100.0 for p in percents), percents  # seen in the middle, not only at 0 and 100
    # the frame captions are whole (no "seed0 fr..." cut by an ellipsis)
    page.wait_for_function("() => document.querySelectorAll('#frames .caption-label').length >= 4")
    captions = page.evaluate(
        "() => [...document.querySelectorAll('#frames .caption-label')]"
        ".map(c => [c.innerText, c.scrollWidth, c.clientWidth])"
    )
    for text, scroll, client in captions:
        assert text.startswith("seed0 frame ") and scroll <= client + 1, captions
    _keep(page, "app_progress_done.png")


def test_bad_upload_gives_a_message(page, tmp_path):
    bad = tmp_path / "sketch.png"
    bad.write_bytes(b"not an image at all")
    page.set_input_files("#upload input[type=file]", str(bad))
    _settings(page, "a ball bouncing", **FAST)
    page.click("#animate")
    status = _status(page, timeout=30_000)
    assert status.startswith("Error:") and "cannot read sketch sketch.png" in status, status
    assert "/tmp" not in status and "\n" not in status.strip()
    assert "Traceback" not in page.content() and page.locator("#gif img").count() == 0
    _keep(page, "app_bad_upload.png")


def test_empty_prompt_gives_a_message(page, tmp_path):
    page.set_input_files("#upload input[type=file]", str(_png_file(tmp_path)))
    _settings(page, "  ", **FAST)
    page.click("#animate")
    status = _status(page, timeout=30_000)
    assert status.startswith("Error:") and "prompt is empty" in status, status


@pytest.mark.slow
def test_draw_then_animate(page):
    page.get_by_role("tab", name="Draw").click()
    page.click("#sketchpad button[aria-label=Brush]")  # the canvas asks for the draw tool first
    canvas = page.locator("#sketchpad canvas").first
    canvas.wait_for(timeout=10_000)
    box = canvas.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + 0.3 * w, y0 + 0.3 * h)
    page.mouse.down()
    for t in np.linspace(0, 2 * np.pi, 24):
        page.mouse.move(x0 + w * (0.5 + 0.1 * np.cos(t)), y0 + h * (0.5 + 0.25 * np.sin(t)), steps=2)
    page.mouse.up()
    _keep(page, "app_drawing.png")
    _settings(page, "a wheel rolling", **FAST)
    page.click("#animate")
    status = _status(page)
    assert status.startswith("Done in"), status
    _keep(page, "app_drawn.png")


@pytest.mark.slow
def test_readme_screenshot_at_the_default_schedule(page):
    """The shipped model at its own schedule (10 steps, 10 frames, alignment on): ~1-2 min on a CPU."""
    sketch = Path(__file__).resolve().parents[1] / "data_gen" / "sketches" / "balloon.svg"
    import cairosvg

    png = Path(tempfile.mkdtemp()) / "balloon.png"
    cairosvg.svg2png(url=str(sketch), write_to=str(png), output_width=256, output_height=256)
    page.set_input_files("#upload input[type=file]", str(png))
    _settings(page, "a balloon floating up", steps=10, frames=10, align=True)
    page.click("#animate")
    status = _status(page, timeout=540_000)
    assert status.startswith("Done in") and "10 frames" in status, status
    page.wait_for_function("() => document.querySelector('#gif img')?.naturalWidth > 0")
    page.wait_for_timeout(500)
    _keep(page, "app.png")
