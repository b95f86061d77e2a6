"""The built wheel runs outside the checkout: conf/, data_gen's sketches and the shipped model travel
inside it, and every console script finds them there.

The wheel is built offline from a copy of the sources (`pip wheel --no-deps --no-build-isolation`),
installed with `--no-deps --no-index` into a fresh venv whose only other packages are the locked stack
already installed here (a .pth line pointing at this interpreter's site-packages: no network, no
second copy), and run from a folder outside the checkout with PYTHONPATH unset.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package():
    """pyproject names its packages one by one (conf/ is mapped in as flipsketch.conf): a new
    subpackage left off the list would be missing from the wheel."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(p.parent.relative_to(root).parts)
        for root in (REPO / "src", REPO)
        for top in ("flipsketch", "data_gen")
        for p in (root / top).rglob("__init__.py")
        if "__pycache__" not in p.parts and (root / top).is_dir()
    }
    assert found | {"flipsketch.conf"} == set(tool["packages"])
    assert tool["package-dir"]["flipsketch.conf"] == "conf"


def _copy_sources(dest: Path) -> Path:
    dest.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("src", "conf", "data_gen"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin folder, environment) of a fresh venv holding only the built wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", HF_HUB_OFFLINE="1", WANDB_MODE="offline")
    src = _copy_sources(tmp / "src")
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, src],
        check=True,
        env=env,
        cwd=tmp,
    )
    (wheel,) = dist.glob("flipsketch-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, env=env)
    py = venv / "bin" / "python"
    purelib = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    locked = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}  # the locked stack
    (Path(purelib) / "locked_stack.pth").write_text("\n".join(sorted(locked)) + "\n")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], check=True, env=env)
    return venv / "bin", env, Path(purelib)


# the installed configs: flipsketch.resources.CONF_DIR, and Hydra's pkg://flipsketch.conf composes
PKG_CONF = """
from hydra import compose, initialize_config_module
import flipsketch.resources as r
from flipsketch.config import register_configs
register_configs()
with initialize_config_module(config_module="flipsketch.conf", version_base="1.3"):
    assert compose("animate").model.name == "tiny_pretrained"
print(r.CONF_DIR)
"""


def _run_all(bin_dir: Path, env: dict, cwd: Path, commands: list[list[str]]) -> dict[str, str]:
    """Start every command at once (each is mostly import time), then wait for all: {program: stdout}."""
    procs = {}
    for program, *args in commands:
        log = open(cwd / f"{program}.log", "w+")  # noqa: SIM115 - closed below
        procs[program] = (
            subprocess.Popen(
                [bin_dir / program, *args], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
            ),
            log,
        )
    out = {}
    for program, (proc, log) in procs.items():
        rc = proc.wait(timeout=600)
        log.seek(0)
        out[program] = log.read()
        log.close()
        assert rc == 0, f"{program} exited {rc}: {out[program][-2000:]}"
    return out


def test_the_wheel_runs_every_command_outside_the_checkout(installed, tmp_path):
    bin_dir, env, site = installed
    away = tmp_path / "elsewhere"  # not the checkout, nothing of it on the path
    away.mkdir()
    # the wheel carries conf/ (as flipsketch.conf), data_gen's sketches and the shipped model
    assert (site / "flipsketch" / "conf" / "animate.yaml").is_file()
    assert (site / "flipsketch" / "conf" / "experiment" / "tiny_table1.yaml").is_file()
    assert (site / "data_gen" / "sketches" / "captions.json").is_file()
    assert (site / "flipsketch" / "assets" / "tiny_pretrained" / "lora").is_dir()
    where = subprocess.run(
        [bin_dir / "python", "-c", PKG_CONF],
        env=env,
        cwd=away,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where) == site / "flipsketch" / "conf"  # the installed copy, not the checkout's

    # flipsketch-animate with a user's own experiment file from --config-dir (docs/install.md)
    mine = away / "my_configs" / "experiment"
    mine.mkdir(parents=True)
    (mine / "my_cat.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: tiny\n\nprompt: a cat jumping\n"
        "sampler:\n  num_frames: 2\n  num_inference_steps: 1\n  align_iters: 1\n"
    )
    from PIL import Image, ImageDraw

    sketch = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(sketch).ellipse((16, 16, 48, 48), outline="black", width=3)
    sketch.save(away / "cat.png")
    commands = [
        # a user's own experiment file through Hydra's --config-dir (docs/install.md)
        ["flipsketch-animate", "--config-dir", "my_configs", "+experiment=my_cat", "sketch=cat.png"]
        + ["out=anim", "device=cpu", "progress=false", "output.formats=[png]"],
        # the shipped benchmark's sketches, read from the installed data_gen
        ["flipsketch-eval", "experiment=tiny_table1", "logger=none", "paths.log_dir=logs_eval"]
        + [
            "methods=[full]",
            "benchmark.only=[cat]",
            "sampler.num_inference_steps=2",
            "sampler.align_iters=1",
        ],
        # one training step, its clips built from the shipped sketches
        ["flipsketch-train", "experiment=tiny_smoke", "logger=none", "paths.log_dir=logs_train"]
        + ["trainer.max_steps=1", "trainer.val_check_interval=1", "data.generate.frames=4"]
        + ["callbacks.sample_videos.every_n_validations=100"],
        ["flipsketch-data", "out=clips", "clips_per_sketch=1", "frames=2", "size=32", "workers=1"]
        + ["progress=false"],
    ]
    out = _run_all(bin_dir, env, away, commands)
    assert len(list((away / "anim" / "seed0" / "frames").glob("*.png"))) == 2
    assert "prompt: a cat jumping" in (away / "anim" / "config.yaml").read_text()
    assert "| FlipSketch |" in out["flipsketch-eval"]
    assert list((away / "logs_train").rglob("pytorch_lora_weights.safetensors"))
    assert len((away / "clips" / "metadata.jsonl").read_text().splitlines()) > 0


def test_dependencies_are_ranges_whose_floor_is_the_lock():
    """pyproject states compatible ranges (no exact pins); each lower bound is the version that
    requirements.lock (what `make install` installs) pins, and the lock satisfies every range."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not line.startswith("#"):
            lock[canonicalize_name(name)] = version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert not any(s.operator == "==" for s in req.specifier), f"{spec}: an exact pin belongs in the lock"
        floors = [s.version for s in req.specifier if s.operator == ">="]
        assert floors == [lock[name]], f"{spec}: its lower bound should be the locked {lock.get(name)}"
        assert req.specifier.contains(lock[name]), f"{spec} excludes the locked {lock[name]}"
    for extra in ("sweep", "app", "tensorboard"):
        for spec in project["optional-dependencies"][extra]:
            assert not any(s.operator == "==" for s in Requirement(spec).specifier), spec
    app = [Requirement(s) for s in project["optional-dependencies"]["app"]]
    assert any(r.name == "pillow" and not r.specifier.contains("13.0.0") for r in app)  # gradio 6
    assert all(
        Requirement(s).specifier.contains(lock["pillow"])
        for s in project["optional-dependencies"]["app"]
        if s.startswith("pillow")
    )
