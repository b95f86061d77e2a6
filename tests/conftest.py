import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny():
    """The tiny model, built once per session: for tests that only read it (never add LoRA, load
    weights or change its processors; `fresh_tiny` gives a model of one's own for that)."""
    from flipsketch.models import build_model

    return build_model("tiny")


@pytest.fixture(scope="session")
def fresh_tiny():
    """A factory: each call builds a new tiny model, for a test (or module fixture) that changes it.
    Session-scoped only so that module-scoped fixtures may use it; it keeps no model itself."""
    from flipsketch.models import build_model

    return lambda: build_model("tiny")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """The small training dataset (tests.helpers.tiny_dataset defaults), generated once per session;
    tests read it and write nothing into it."""
    from tests.helpers import tiny_dataset

    return tiny_dataset(tmp_path_factory.mktemp("train_dataset") / "clips")


def draw_sketch(size=64, shape="circle") -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    s = size
    if shape == "circle":
        d.ellipse((s // 4, s // 4, 3 * s // 4, 3 * s // 4), outline="black", width=max(1, s // 32))
    else:
        d.line((s // 8, s // 2, 7 * s // 8, s // 2), fill="black", width=max(1, s // 32))
        d.line((s // 2, s // 8, s // 2, 7 * s // 8), fill="black", width=max(1, s // 32))
    return img


@pytest.fixture
def sketch_png(tmp_path) -> Path:
    p = tmp_path / "sketch.png"
    draw_sketch(96).save(p)
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_xclip_dir(tmp_path_factory) -> Path:
    """A tiny random X-CLIP saved in the microsoft/xclip-base-patch32 layout (built offline)."""
    from flipsketch.metrics import build_tiny_xclip

    return build_tiny_xclip(tmp_path_factory.mktemp("xclip") / "tiny-xclip", seed=0)


@pytest.fixture(autouse=True)
def _logging_state_restored():
    """In-process CLI runs (Hydra's job logging, the app's server log) attach logging handlers to the
    stderr of the test that ran them, which pytest's capture then closes, and set the root level to
    INFO: drop closed-stream handlers before a test, and after it put back every logger's level and
    remove the handlers the test added, so a later test sees the logging a fresh process has."""
    import logging

    def loggers():
        return [logging.getLogger()] + [
            lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
        ]

    for lg in loggers():
        for h in list(lg.handlers):
            stream = getattr(h, "stream", None)
            if isinstance(h, logging.StreamHandler) and getattr(stream, "closed", False):
                lg.removeHandler(h)
    saved = {id(lg): (lg.level, set(map(id, lg.handlers)), lg.propagate, lg.disabled) for lg in loggers()}
    yield
    for lg in loggers():
        if id(lg) not in saved:  # made by an import during the test: its library's own settings
            continue
        level, handlers, propagate, disabled = saved[id(lg)]
        lg.setLevel(level)
        lg.propagate, lg.disabled = propagate, disabled
        for h in list(lg.handlers):  # what the test added; pytest's own capture handlers stay
            if id(h) not in handlers and not type(h).__module__.startswith("_pytest"):
                lg.removeHandler(h)
