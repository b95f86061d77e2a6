"""flipsketch-app: FlipSketch in a web browser (a thin Gradio layer over flipsketch-animate).

Usage:
  make app && .venv/bin/flipsketch-app                  # http://127.0.0.1:7860, the shipped small model on the CPU
  flipsketch-app model=modelscope model.lora=weights/lora device=cuda port=7861
  flipsketch-app host=0.0.0.0 results=/srv/flipsketch keep=50

Draw or upload a sketch, describe the motion, press Animate: the page shows the GIF, the MP4, the
animated SVG (traced vector frames) and every frame. Settings: lambda (motion 0 .. fidelity 1), steps,
frames, frame alignment, seeds, model.

App settings (key=value): host (127.0.0.1), port (7860), results (the folder the runs are written
to; default a folder in the system temp dir, refused if it holds files flipsketch did not write),
keep (how many runs to keep there, 20), max_upload (the largest sketch file accepted, 10MB; e.g.
max_upload=2MB).
Everything else is a flipsketch-animate setting (model=..., device=..., sampler.*=..., output.*=...)
and becomes the page's default; device defaults to cpu here (device=cuda for a GPU).

Each request goes through flipsketch-animate's own checks and sampling (validate_request, animate):
a bad upload or an empty prompt is a one-line message in the page. The model is loaded once and kept;
requests are queued and run one at a time. Gradio's analytics are off and the page loads no remote
assets.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cli import cli_main
from .errors import UserError

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: it must not phone home

log = logging.getLogger("flipsketch.app")

APP_KEYS = {"host": "127.0.0.1", "port": 7860, "results": None, "keep": 20, "max_upload": "10MB"}
MAX_UPLOAD = 10 * 1000**2  # bytes: the largest sketch file the page accepts (app setting max_upload)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
MODEL_CHOICES = ("tiny_pretrained", "tiny", "modelscope", "flipsketch_ckpt")
FORMATS = ["gif", "mp4", "png", "svg"]
MAX_SEEDS = 4
GALLERY_COLUMNS = 5  # thumbnails per row: 10 frames in two whole rows, none cut off
RUN_NAME_BYTES = 24  # 192 random bits in every run folder's name (at least 128: issue #36)
CSS = (
    ".flipsketch-svg svg{width:260px;height:260px;border:1px solid #ddd}"
    " #gif img, #frames img{image-rendering:pixelated}"
    " #gif img{width:100%;height:100%;object-fit:contain}"
    " #frames .caption-label{max-width:calc(100% - 8px);white-space:nowrap;font-size:11px;padding:1px 4px;opacity:.8}"
    " .run-progress{display:flex;align-items:center;gap:8px}"
    " .run-progress progress{flex:0 0 40%;height:14px}"
)
MAX_SVG_INLINE = 4_000_000  # characters of animated SVG shown inline in the page (larger: download only)


def split_app_args(argv: list[str]) -> tuple[dict, list[str]]:
    """(app settings, flipsketch-animate overrides). App settings are checked here, one line each."""
    from .checks import as_int

    settings, rest = dict(APP_KEYS), []
    for a in argv:
        key, eq, value = a.partition("=")
        if eq and key in APP_KEYS:
            settings[key] = value
        else:
            rest.append(a)
    settings["port"] = as_int(_int_or_text(settings["port"]), "port", 1, 65535)
    settings["keep"] = as_int(_int_or_text(settings["keep"]), "keep", 1, 100_000)
    settings["max_upload"] = parse_size(settings["max_upload"], "max_upload")
    if not str(settings["host"]).strip():
        raise UserError("host is empty: e.g. host=127.0.0.1")
    if not any(o.partition("=")[0] == "device" for o in rest):
        rest.append("device=cpu")
    return settings, rest


def parse_size(text, name: str = "max_upload") -> int:
    """A size in bytes: 5000000, 5MB, 500kb, 2MiB (at least 1 kB, at most 1 GB)."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _SIZE_UNITS:
        raise UserError(
            f"{name} must be a size such as 10MB, 500kB or 2000000 (bytes), got {str(text)[:40]!r}"
        )
    size = int(float(m.group(1)) * _SIZE_UNITS[unit])
    if not 1000 <= size <= 1000**3:
        raise UserError(f"{name} must be between 1kB and 1GB, got {str(text)[:40]!r}")
    return size


def _size(n: int) -> str:
    return f"{n / 1000**2:.1f} MB" if n >= 1000**2 else f"{n / 1000:.0f} kB"


def _number(value, name: str, kind):
    """A slider's value (an API client may send anything): a number of `kind`, or one line."""
    import math

    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(number) or (kind is int and not number.is_integer()):
        raise UserError(f"{name} must be a {'whole' if kind is int else 'finite'} number, got {value}")
    return kind(number)


def _int_or_text(v):
    try:
        return int(str(v))
    except ValueError:
        return v


def _model_of(overrides: list[str]) -> str:
    for o in overrides:
        key, _, value = o.partition("=")
        if key == "model":
            return value
    return "tiny_pretrained"


def compose(overrides: list[str], model: str | None = None):
    """The flipsketch-animate config for these overrides (with `model` replacing any model= given),
    the model's own sampler preset included, exactly as flipsketch-animate composes it."""
    from .cli import compose_config, with_model_sampler

    if model is not None and model != _model_of(overrides):
        # settings of the command line's model (model.lora=...) do not carry over to another model
        overrides = [o for o in overrides if not o.partition("=")[0].startswith("model")] + [f"model={model}"]
    return compose_config("animate", with_model_sampler("animate", overrides))


@dataclass
class ModelCache:
    """One loaded model at a time (the last one asked for), keyed by its settings, device and dtype."""

    key: tuple | None = None
    components: object = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, cfg, req):
        from omegaconf import OmegaConf

        from .flipbook import build_components

        key = (
            repr(OmegaConf.to_container(cfg.model, resolve=True)),
            str(req.device),
            str(req.dtype),
            bool(cfg.cpu_offload),
        )
        with self.lock:
            if self.key != key:
                self.components, self.key = None, None  # free the old one before loading the next
                self.components = build_components(cfg, req)
                self.key = key
            return self.components


def parse_seeds(text) -> list[int]:
    parts = [p for p in str(text or "").replace(",", " ").split() if p]
    if not parts:
        raise UserError("seeds is empty: type one or more whole numbers, e.g. 0 or 0, 1")
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"seeds must be whole numbers separated by commas, got {text!r}") from None
    if len(seeds) > MAX_SEEDS:
        raise UserError(f"at most {MAX_SEEDS} seeds at a time, got {len(seeds)}")
    return seeds


def drawn_sketch(value, folder: Path) -> Path:
    """The Sketchpad's drawing (its composite, on white) saved as a PNG; a blank canvas is refused."""
    from PIL import Image

    comp = value.get("composite") if isinstance(value, dict) else value
    if comp is None:
        raise UserError("nothing drawn: draw a sketch on the canvas, or upload one in the Upload tab")
    a = np.asarray(comp)
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        raise UserError("the drawing could not be read: draw again, or upload a sketch")
    from .sketch import check_image_dims

    check_image_dims(int(a.shape[1]), int(a.shape[0]), "the drawing")  # as an uploaded file's header
    img = Image.fromarray(a)
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        page = Image.new("RGBA", img.size, "white")
        page.alpha_composite(img)
        img = page
    img = img.convert("RGB")
    if int(np.asarray(img.convert("L")).min()) > 200:
        raise UserError("nothing drawn: draw a sketch on the canvas, or upload one in the Upload tab")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "drawn_sketch.png"
    img.save(path)
    return path


class FlipSketchApp:
    """The page's one action, `run`, and what it needs between requests (the model, the results)."""

    def __init__(self, overrides: list[str], results: Path, keep: int = 20, max_upload: int = MAX_UPLOAD):
        from .checks import check_own_folder

        self.overrides = list(overrides)
        self.results = Path(results)
        if not _legacy_results(self.results):  # never delete a folder of the user's
            check_own_folder(self.results, "results")
        self.keep = keep
        self.max_upload = int(max_upload)
        self.models = ModelCache()
        self.default_model = _model_of(self.overrides)
        self.defaults = compose(self.overrides)  # typos in the command line fail here, one line
        from .models.loaders import resolve_device
        from .models.registry import check_model_config
        from .outputs import check_output_config

        check_model_config(self.defaults.model)
        check_output_config(self.defaults.output)
        resolve_device(str(self.defaults.device), str(self.defaults.dtype))

    def examples(self) -> list[list[str]]:
        """[[sketch png, prompt], ...]: the shipped held-out sketches (never trained on) with their
        captions, rasterised once by data_gen's safe renderer into the results folder."""
        import json

        from PIL import Image

        from data_gen.build import SHIPPED_SKETCHES
        from data_gen.raster import render_svg_file

        from .checks import mark_own_folder
        from .tiny_world import HELDOUT_SKETCHES

        captions = json.loads((SHIPPED_SKETCHES / "captions.json").read_text(encoding="utf-8"))
        folder = self.results / "examples"
        mark_own_folder(self.results, "flipsketch-app")
        folder.mkdir(exist_ok=True)
        rows = []
        for name in HELDOUT_SKETCHES:
            svg, png = SHIPPED_SKETCHES / f"{name}.svg", folder / f"{name}.png"
            if not svg.is_file() or name not in captions:
                continue
            if not png.is_file():
                Image.fromarray(render_svg_file(str(svg), 256)).save(png)
            rows.append([str(png), captions[name]])
        return rows

    def model_choices(self) -> list[str]:
        return list(dict.fromkeys([self.default_model, *MODEL_CHOICES]))

    def _new_run_dir(self) -> Path:
        from .checks import is_our_folder, mark_own_folder

        mark_own_folder(self.results, "flipsketch-app")
        runs = sorted(
            (p for p in self.results.iterdir() if p.is_dir() and p.name.startswith("run-")),
            key=lambda p: p.stat().st_mtime_ns,
        )
        runs = [p for p in runs if is_our_folder(p, ("config.yaml",))]
        for old in runs[: max(0, len(runs) - self.keep + 1)]:  # only run folders the app wrote
            shutil.rmtree(old, ignore_errors=True)
        # the name is a visitor's only handle on the run's files: unguessable (RUN_NAME_BYTES random bytes)
        run_dir = self.results / f"run-{secrets.token_urlsafe(RUN_NAME_BYTES)}"
        mark_own_folder(run_dir, "flipsketch-app")
        return run_dir

    def run(
        self, upload, drawing, source, prompt, lambda_, steps, frames, align, seeds, model, progress=None
    ):
        """-> (status markdown, gif, mp4, svg html, gallery, files). Never raises: a user error is the
        status line, anything else a one-line 'internal error' (its traceback goes to the server log).
        `progress(fraction, desc=...)` (e.g. a gr.Progress) hears the model loading and then every
        step and alignment iteration of every seed (fraction of the whole run, never decreasing)."""
        empty = (None, None, "", [], [])
        run_dir = None
        try:
            run_dir = self._new_run_dir()
            return self._run(
                run_dir,
                upload,
                drawing,
                source,
                prompt,
                lambda_,
                steps,
                frames,
                align,
                seeds,
                model,
                progress,
            )
        except BaseException as exc:
            if run_dir is not None:  # a refused or failed request leaves no folder behind
                shutil.rmtree(run_dir, ignore_errors=True)
            if not isinstance(exc, Exception):
                raise
            return self._failure(exc, upload, empty)

    @staticmethod
    def _failure(exc: Exception, upload, empty) -> tuple:
        if isinstance(exc, UserError):
            msg = " ".join(str(exc).split())
            if isinstance(upload, str) and upload:  # the server's copy of an upload: say its own name
                msg = msg.replace(upload, Path(upload).name)
            return (f"**Error:** {msg}", *empty)
        from .errors import as_disk_full

        full = as_disk_full(exc)  # a full disk is the server's to fix, said plainly
        if full is not None:
            return (f"**Error:** {' '.join(str(full).split())}", *empty)
        log.error("animation failed", exc_info=exc)  # the page gets one line, the log the traceback
        msg = " ".join(str(exc).split())[:200]
        return (f"**Error:** internal error ({type(exc).__name__}: {msg}); see the server log", *empty)

    def _run(
        self, run_dir, upload, drawing, source, prompt, lambda_, steps, frames, align, seeds, model, progress
    ):
        from omegaconf import open_dict

        from data_gen.raster import render_svg_file

        from .checks import literal_text
        from .cli import run_check
        from .flipbook import animate, validate_request
        from .metrics import passes_clip_filter

        t0 = time.perf_counter()
        if source == "draw":
            sketch = drawn_sketch(drawing, run_dir)
        else:
            if not upload:
                raise UserError("no sketch: upload an image (PNG, JPEG, ...) or draw one in the Draw tab")
            sketch = Path(upload if isinstance(upload, str) else getattr(upload, "name", upload))
            size = sketch.stat().st_size if sketch.is_file() else 0
            if size > self.max_upload:
                raise UserError(
                    f"the upload is {_size(size)}, more than the {_size(self.max_upload)} this page accepts "
                    "(app setting max_upload)"
                )
        if model not in self.model_choices():
            raise UserError(f"unknown model {model!r}; choose one of {', '.join(self.model_choices())}")
        cfg = compose(self.overrides, model)
        with open_dict(cfg):  # the page's text is data: literal_text keeps OmegaConf from resolving it
            cfg.sketch = literal_text(str(sketch))  # an upload keeps its own (user-chosen) file name
            cfg.prompt = literal_text("" if prompt is None else str(prompt))
            cfg.seeds = parse_seeds(seeds)
            cfg.out = literal_text(str(run_dir))
            cfg.progress = True
            cfg.sampler.lambda_ = _number(lambda_, "lambda", float)
            cfg.sampler.num_inference_steps = _number(steps, "steps", int)
            cfg.sampler.num_frames = _number(frames, "frames", int)
            cfg.sampler.align = bool(align)
            cfg.output.formats = list(dict.fromkeys([*cfg.output.formats, *FORMATS]))
        run_check(lambda c: validate_request(c, render_svg_file), cfg)  # animate's checks, before loading
        req = validate_request(cfg, render_svg_file)
        if progress is not None:
            progress(0, desc=f"loading {model}")
        comps = self.models.get(cfg, req)
        on_progress = None if progress is None else (lambda f, d: progress(f, desc=d))
        argv = [f"model={model}", f"prompt={cfg.prompt}", f"seeds={cfg.seeds}", f"sampler.lambda_={lambda_}"]
        argv += [
            f"sampler.num_inference_steps={steps}",
            f"sampler.num_frames={frames}",
            f"sampler.align={align}",
        ]
        folders = animate(
            cfg,
            argv,
            components=comps,
            command="flipsketch-app",
            clip_filter=passes_clip_filter,
            on_progress=on_progress,
            svg_reader=render_svg_file,  # SVG sketches: data_gen's safe rasteriser
        )
        if not folders:
            return ("Every seed was dropped by the CLIP filter (output.clip_filter).", None, None, "", [], [])
        first = folders[0]
        gallery, files = [], []
        for f in folders:
            pngs = sorted((f / "frames").glob("*.png"))
            gallery += [(str(p), f"{f.name} frame {int(p.stem)}") for p in pngs]
            files += [
                str(f / n) for n in ("animation.gif", "animation.mp4", "animation.svg") if (f / n).exists()
            ]
        svg_text = (first / "animation.svg").read_text(encoding="utf-8")
        svg_html = (
            f'<div id="svg-anim" class="flipsketch-svg">{svg_text}</div>'
            if len(svg_text) <= MAX_SVG_INLINE
            else "<p>The animated SVG is large: download it below.</p>"
        )
        n = len(gallery) // max(1, len(folders))
        status = (
            f"Done in {time.perf_counter() - t0:.1f} s: {len(folders)} animation(s) of {n} frames, "
            f"model {model}, {req.device}, {steps} steps, lambda {float(lambda_):g}. "
            "Download the files below."
        )
        return (status, str(first / "animation.gif"), str(first / "animation.mp4"), svg_html, gallery, files)


def progress_html(fraction: float, desc: str, seconds: float, state: str = "running") -> str:
    """The page's progress bar: what runs now (step, alignment iteration), its share, the time."""
    import html

    pct = 100.0 * min(1.0, max(0.0, float(fraction)))
    return (
        f'<div class="run-progress" data-state="{state}" data-percent="{pct:.1f}">'
        f'<progress max="100" value="{pct:.1f}"></progress> '
        f"<span>{html.escape(desc)} &middot; {pct:.0f}% &middot; {seconds:.0f} s</span></div>"
    )


def run_streaming(app: FlipSketchApp, args: tuple, outputs: list, bar, every: float = 0.2):
    """Run `app.run(*args)` in a worker thread and stream its progress to the page: yields
    {bar: progress html} while it runs (at most one update per `every` seconds, the latest one),
    then the run's outputs with the bar at 100% ("done") or stopped where it failed."""
    import queue

    updates: queue.Queue = queue.Queue()
    result: dict = {}

    def report(fraction, desc=None):
        updates.put((float(fraction), str(desc or "")))

    def work():
        try:
            result["value"] = app.run(*args, progress=report)
        finally:
            updates.put(None)

    t0 = time.perf_counter()
    worker = threading.Thread(target=work, name="flipsketch-run", daemon=True)
    worker.start()
    latest, done, shown = (0.0, "starting"), False, 0.0
    while not done:
        item = updates.get()
        if item is None:
            break
        latest = max(latest[0], item[0]), item[1]  # never backwards
        deadline = time.perf_counter() + every
        while time.perf_counter() < deadline:  # coalesce a burst of updates into the latest
            try:
                item = updates.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if item is None:
                done = True
                break
            latest = max(latest[0], item[0]), item[1]
        if latest[0] > shown or not done:
            shown = latest[0]
            yield {bar: progress_html(latest[0], latest[1], time.perf_counter() - t0)}
    worker.join()
    value = result.get("value") or ("**Error:** internal error; see the server log", None, None, "", [], [])
    failed = str(value[0]).startswith("**Error")
    final = (
        progress_html(latest[0], f"stopped: {latest[1]}", time.perf_counter() - t0, "stopped")
        if failed
        else progress_html(1.0, "done", time.perf_counter() - t0, "done")
    )
    yield dict(zip([*outputs, bar], [*value, final], strict=True))


def build_demo(app: FlipSketchApp):
    """The page (a gr.Blocks), its queue set to run one animation at a time."""
    import gradio as gr

    d = app.defaults

    with gr.Blocks(title="FlipSketch", analytics_enabled=False) as demo:
        gr.Markdown(
            "# FlipSketch\nOne sketch + a text prompt &rarr; a flip-book animation "
            f"(GIF, MP4, animated SVG). Model: **{app.default_model}** on **{d.device}**."
        )
        source = gr.State("upload")
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tabs():
                    with gr.Tab("Upload", id="upload") as tab_up:
                        upload = gr.File(
                            label="Sketch image or SVG (black strokes on white)",
                            file_types=["image", ".svg"],
                            type="filepath",
                            elem_id="upload",
                        )
                        preview = gr.Image(
                            label="Your sketch", type="filepath", interactive=False, height=200,
                            elem_id="preview",
                        )  # fmt: skip
                        upload.change(preview_upload, upload, preview)
                    with gr.Tab("Draw", id="draw") as tab_draw:
                        drawing = gr.Sketchpad(
                            label="Draw a sketch",
                            type="numpy",
                            image_mode="RGBA",
                            canvas_size=(512, 512),
                            brush=gr.Brush(default_size=6, colors=["#000000"], color_mode="fixed"),
                            elem_id="sketchpad",
                        )
                tab_up.select(lambda: "upload", None, source)
                tab_draw.select(lambda: "draw", None, source)
                prompt = gr.Textbox(
                    label="Prompt (the motion)", placeholder="a cat jumping", elem_id="prompt"
                )
                lambda_ = gr.Slider(
                    0.0, 1.0, value=float(d.sampler.lambda_), step=0.05,
                    label="λ: motion (0) ↔ fidelity to the sketch (1)", elem_id="lambda",
                )  # fmt: skip
                with gr.Row():
                    steps = gr.Slider(
                        2,
                        50,
                        value=int(d.sampler.num_inference_steps),
                        step=1,
                        label="Steps",
                        elem_id="steps",
                    )
                    frames = gr.Slider(
                        2, 24, value=int(d.sampler.num_frames), step=1, label="Frames", elem_id="frames-n"
                    )
                with gr.Row():
                    seeds = gr.Textbox(label="Seed(s)", value="0", elem_id="seeds")
                    model = gr.Dropdown(
                        app.model_choices(), value=app.default_model, label="Model", elem_id="model"
                    )
                align = gr.Checkbox(
                    value=bool(d.sampler.align),
                    label="Frame alignment (slower, holds the sketch)",
                    elem_id="align",
                )
                go = gr.Button("Animate", variant="primary", elem_id="animate")
                gr.Examples(
                    app.examples(),
                    [upload, prompt],
                    label="Examples: held-out sketches the model never saw (click one, then Animate)",
                    examples_per_page=8,
                    elem_id="examples",
                )
            with gr.Column(scale=1):
                status = gr.Markdown("", elem_id="status")
                bar = gr.HTML(
                    progress_html(0.0, "waiting for a sketch and a prompt", 0, "idle"), elem_id="progress"
                )
                with gr.Row():
                    gif = gr.Image(label="GIF", type="filepath", elem_id="gif", interactive=False, height=300)
                    with gr.Column():
                        gr.Markdown("Animated SVG (traced vectors)")
                        svg = gr.HTML("", elem_id="svg")
                mp4 = gr.Video(label="MP4", elem_id="mp4", interactive=False, height=300)
                gallery = gr.Gallery(
                    label="Frames",
                    columns=GALLERY_COLUMNS,
                    height="auto",
                    object_fit="contain",
                    elem_id="frames",
                    interactive=False,
                )
                files = gr.File(label="Downloads", file_count="multiple", elem_id="files", interactive=False)
        outputs = [status, gif, mp4, svg, gallery, files]

        def run_live(*args):  # the step and alignment progress streamed to the page's bar
            yield from run_streaming(app, args, outputs, bar)

        go.click(
            run_live,
            [upload, drawing, source, prompt, lambda_, steps, frames, align, seeds, model],
            [*outputs, bar],
            show_progress="minimal",  # gradio's timer in a corner; the bar above says what runs
            concurrency_limit=1,  # one animation at a time: the model and the device are shared
            concurrency_id="animate",
        )
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo


def preview_upload(path: str | None) -> str | None:
    """The uploaded file, shown back when it is an image PIL can read (nothing otherwise; animating
    reports why)."""
    if not path:
        return None
    try:
        from .sketch import looks_like_svg

        if looks_like_svg(path):  # drawn by the same safe rasteriser as the run, shown as a PNG
            from PIL import Image

            from data_gen.raster import render_svg_file

            png = Path(path).with_name(Path(path).stem + ".preview.png")
            Image.fromarray(render_svg_file(path, 256)).save(png)
            return str(png)
        from PIL import Image

        with Image.open(path) as im:
            im.verify()
        return path
    except Exception:  # noqa: BLE001 - any unreadable upload: no preview, the Animate button explains
        return None


def page_theme():
    """Gradio's default look with the system's fonts (its own theme fetches fonts from the web)."""
    import gradio as gr

    font = [gr.themes.Font("ui-sans-serif"), gr.themes.Font("system-ui"), gr.themes.Font("sans-serif")]
    mono = [gr.themes.Font("ui-monospace"), gr.themes.Font("monospace")]
    return gr.themes.Default(font=font, font_mono=mono)


def launch(demo, app: FlipSketchApp, host: str, port: int, block: bool = True):
    """Serve the page; block=False returns at once (tests), demo.close() stops it."""
    return demo.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=not block,
        allowed_paths=[str(app.results)],
        max_file_size=app.max_upload,  # larger uploads are refused by the server, before they are stored
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        quiet=not block,
        footer_links=[],
        theme=page_theme(),
        css=CSS,
    )


def _legacy_results(folder: Path) -> bool:
    """A results folder an older flipsketch-app wrote (before the marker): only run-* folders."""
    return folder.is_dir() and all(p.is_dir() and p.name.startswith("run-") for p in folder.iterdir())


def default_results_dir() -> Path:
    return Path(tempfile.gettempdir()) / "flipsketch-app"


def serve(argv: list[str]) -> int:
    """The command line's task: check the settings, compose the default config, serve the page."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError("the web app needs gradio: run `make app` (pip install -e '.[app]')") from None
    settings, overrides = split_app_args(argv)
    from .threads import config_threads, use_threads

    use_threads(config_threads(compose(overrides)))  # once, at start (threads= as flipsketch-animate's)
    results = Path(settings["results"]) if settings["results"] else default_results_dir()
    app = FlipSketchApp(overrides, results, settings["keep"], settings["max_upload"])
    demo = build_demo(app)
    # the server's log, set up only once every setting was accepted (a refused start adds no handler
    # bound to this moment's stderr)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(f"flipsketch-app: http://{settings['host']}:{settings['port']}  (Ctrl+C stops it)", flush=True)
    launch(demo, app, settings["host"], settings["port"], block=True)
    return 0


main = cli_main(
    None,  # no config composed up front: each request composes flipsketch-animate's
    serve,
    program="flipsketch-app",
    help_text=__doc__,
    help_groups=False,
    help_words=("-h", "--help", "help"),
    flag_example="port=7861",
    help_defaults="animate",  # the page's defaults are flipsketch-animate's for the chosen model
)


if __name__ == "__main__":
    sys.exit(main())
