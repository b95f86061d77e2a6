"""flipsketch-app: FlipSketch in a web browser (a thin Gradio layer over flipsketch-animate).

Usage:
  make app && .venv/bin/flipsketch-app                  # http://127.0.0.1:7860, the shipped small model on the CPU
  flipsketch-app model=modelscope model.lora=weights/lora device=cuda port=7861
  flipsketch-app host=0.0.0.0 results=/srv/flipsketch keep=50

Draw or upload a sketch, describe the motion, press Animate: the page shows the GIF, the MP4, the
animated SVG (traced vector frames) and every frame. Settings: lambda (motion 0 .. fidelity 1), steps,
frames, frame alignment, seeds, model.

App settings (key=value): host (127.0.0.1), port (7860), results (the folder the runs are written
to; default a folder in the system temp dir), keep (how many runs to keep there, 20).
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
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cli import cli_main
from .errors import UserError

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: it must not phone home

log = logging.getLogger("flipsketch.app")

APP_KEYS = {"host": "127.0.0.1", "port": 7860, "results": None, "keep": 20}
MODEL_CHOICES = ("tiny_pretrained", "tiny", "modelscope", "flipsketch_ckpt")
FORMATS = ["gif", "mp4", "png", "svg"]
MAX_SEEDS = 4
CSS = (
    ".flipsketch-svg svg{width:260px;height:260px;border:1px solid #ddd}"
    " #gif img, #frames img{image-rendering:pixelated}"
    " #gif img{width:100%;height:100%;object-fit:contain}"
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
    if not str(settings["host"]).strip():
        raise UserError("host is empty: e.g. host=127.0.0.1")
    if not any(o.partition("=")[0] == "device" for o in rest):
        rest.append("device=cpu")
    return settings, rest


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

        from .animation import build_components

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

    def __init__(self, overrides: list[str], results: Path, keep: int = 20):
        self.overrides = list(overrides)
        self.results = Path(results)
        self.keep = keep
        self.models = ModelCache()
        self.default_model = _model_of(self.overrides)
        self.defaults = compose(self.overrides)  # typos in the command line fail here, one line
        from .models.loaders import resolve_device
        from .models.registry import check_model_config
        from .outputs import check_output_config

        check_model_config(self.defaults.model)
        check_output_config(self.defaults.output)
        resolve_device(str(self.defaults.device), str(self.defaults.dtype))

    def model_choices(self) -> list[str]:
        return list(dict.fromkeys([self.default_model, *MODEL_CHOICES]))

    def _new_run_dir(self) -> Path:
        self.results.mkdir(parents=True, exist_ok=True)
        runs = sorted(p for p in self.results.iterdir() if p.is_dir() and p.name.startswith("run-"))
        for old in runs[: max(0, len(runs) - self.keep + 1)]:
            shutil.rmtree(old, ignore_errors=True)
        return self.results / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"

    def run(
        self, upload, drawing, source, prompt, lambda_, steps, frames, align, seeds, model, progress=None
    ):
        """-> (status markdown, gif, mp4, svg html, gallery, files). Never raises: a user error is the
        status line, anything else a one-line 'internal error' (its traceback goes to the server log)."""
        empty = (None, None, "", [], [])
        try:
            return self._run(
                upload, drawing, source, prompt, lambda_, steps, frames, align, seeds, model, progress
            )
        except UserError as exc:
            msg = " ".join(str(exc).split())
            if isinstance(upload, str) and upload:  # the server's copy of an upload: say its own name
                msg = msg.replace(upload, Path(upload).name)
            return (f"**Error:** {msg}", *empty)
        except Exception as exc:  # noqa: BLE001 - the page gets one line, the log the traceback
            log.exception("animation failed")
            msg = " ".join(str(exc).split())[:200]
            return (f"**Error:** internal error ({type(exc).__name__}: {msg}); see the server log", *empty)

    def _run(self, upload, drawing, source, prompt, lambda_, steps, frames, align, seeds, model, progress):
        from omegaconf import open_dict

        from .animation import animate, validate_request
        from .cli import run_check
        from .metrics import passes_clip_filter

        t0 = time.perf_counter()
        run_dir = self._new_run_dir()
        if source == "draw":
            sketch = drawn_sketch(drawing, run_dir)
        else:
            if not upload:
                raise UserError("no sketch: upload an image (PNG, JPEG, ...) or draw one in the Draw tab")
            sketch = Path(upload if isinstance(upload, str) else getattr(upload, "name", upload))
        if model not in self.model_choices():
            raise UserError(f"unknown model {model!r}; choose one of {', '.join(self.model_choices())}")
        cfg = compose(self.overrides, model)
        with open_dict(cfg):
            cfg.sketch = str(sketch)
            cfg.prompt = "" if prompt is None else str(prompt)
            cfg.seeds = parse_seeds(seeds)
            cfg.out = str(run_dir)
            cfg.progress = True
            cfg.sampler.lambda_ = float(lambda_)
            cfg.sampler.num_inference_steps = int(steps)
            cfg.sampler.num_frames = int(frames)
            cfg.sampler.align = bool(align)
            cfg.output.formats = list(dict.fromkeys([*cfg.output.formats, *FORMATS]))
        run_check(validate_request, cfg)  # flipsketch-animate's checks, before any model is loaded
        req = validate_request(cfg)
        if progress is not None:
            progress(0, desc=f"loading {model}")
        comps = self.models.get(cfg, req)
        argv = [f"model={model}", f"prompt={cfg.prompt}", f"seeds={cfg.seeds}", f"sampler.lambda_={lambda_}"]
        argv += [
            f"sampler.num_inference_steps={steps}",
            f"sampler.num_frames={frames}",
            f"sampler.align={align}",
        ]
        folders = animate(
            cfg, argv, components=comps, command="flipsketch-app", clip_filter=passes_clip_filter
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
            f"Saved in `{run_dir}`."
        )
        return (status, str(first / "animation.gif"), str(first / "animation.mp4"), svg_html, gallery, files)


def build_demo(app: FlipSketchApp):
    """The page (a gr.Blocks), its queue set to run one animation at a time."""
    import gradio as gr

    d = app.defaults

    def run_tracked(*args, progress=gr.Progress(track_tqdm=True)):  # the pipeline's tqdm bar -> the page
        return app.run(*args, progress=progress)

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
                            label="Sketch image (black strokes on white)",
                            file_types=["image"],
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
            with gr.Column(scale=1):
                status = gr.Markdown("", elem_id="status")
                with gr.Row():
                    gif = gr.Image(label="GIF", type="filepath", elem_id="gif", interactive=False, height=300)
                    with gr.Column():
                        gr.Markdown("Animated SVG (traced vectors)")
                        svg = gr.HTML("", elem_id="svg")
                mp4 = gr.Video(label="MP4", elem_id="mp4", interactive=False, height=300)
                gallery = gr.Gallery(
                    label="Frames",
                    columns=8,
                    height="auto",
                    object_fit="contain",
                    elem_id="frames",
                    interactive=False,
                )
                files = gr.File(label="Downloads", file_count="multiple", elem_id="files", interactive=False)
        go.click(
            run_tracked,
            [upload, drawing, source, prompt, lambda_, steps, frames, align, seeds, model],
            [status, gif, mp4, svg, gallery, files],
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
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        quiet=not block,
        footer_links=[],
        theme=page_theme(),
        css=CSS,
    )


def default_results_dir() -> Path:
    return Path(tempfile.gettempdir()) / "flipsketch-app"


def serve(argv: list[str]) -> int:
    """The command line's task: check the settings, compose the default config, serve the page."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError("the web app needs gradio: run `make app` (pip install -e '.[app]')") from None
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings, overrides = split_app_args(argv)
    from .threads import config_threads, use_threads

    use_threads(config_threads(compose(overrides)))  # once, at start (threads= as flipsketch-animate's)
    results = Path(settings["results"]) if settings["results"] else default_results_dir()
    app = FlipSketchApp(overrides, results, settings["keep"])
    demo = build_demo(app)
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
)


if __name__ == "__main__":
    sys.exit(main())
