"""The bad-input table: one line per case, grouped by command line and by the web app.

To add a case, add ONE line to the group of its CLI:

    (argv, exit code, one-line message regex),

`argv` are the words after the command (placeholders: {tmp} the case's scratch folder and working
directory, {sketch} a good sketch, {file} a text file, {mine} a folder of the user's own holding
seed0/notes.txt, {ours} a flipsketch-train checkpoint, {cdir} a folder of extra configs). Each group
starts from a base command line that is otherwise valid (BASE below), so a case names only what is
wrong. Every case is checked the same way, automatically: the exit code, exactly one line on stderr
matching `error: <regex>`, no traceback, nothing written anywhere under {tmp} (every file's name,
size and mtime compared before and after: no run folder, no output folder, the user's folder
untouched), and no model built. The CLIs run in-process (`main(argv)`), as the console scripts do;
SUBPROCESS holds the few cases that also go through the installed console scripts.

The app group is a table of page inputs (what the Animate button sends) and the one-line message
the page shows; nothing may be left in the results folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, draw_sketch
from tests.safety.test_bad_inputs import models_built, world  # noqa: F401 - the shared fixtures

BIG = str(2**64)  # a seed no generator takes
HUGE = "9" * 40

# ----------------------------------------------------------------------------------- the table
BASE = {
    "animate": ["model=tiny", "sketch={sketch}", "prompt=a cat jumping", "out={tmp}/out", "progress=false"],
    "train": ["experiment=tiny_smoke", "logger=none", "paths.log_dir={tmp}/logs"],
    "eval": ["experiment=tiny_table1", "logger=none", "paths.log_dir={tmp}/logs"],
    "export": ["paths.log_dir={tmp}/logs", "ckpt_path={ours}", "out={tmp}/out"],
    "data_gen": ["out={tmp}/out", "progress=false", "workers=1"],
    "app": ["results={tmp}/results", "model=tiny"],
}

CASES = {
    "animate": [
        # seeds (issue 25, item 5)
        (["seeds=[" + BIG + "]"], 2, r"seeds: a seed must be at most 4294967295"),
        (["seeds=[" + HUGE + "]"], 2, r"a seed must be at most 4294967295"),
        (["seeds=[0,4294967296]"], 2, r"a seed must be at most"),
        (["seeds=[-1]"], 2, r"seeds must be a non-empty list of non-negative integers"),
        (["seeds=[]"], 2, r"seeds must be a non-empty list"),
        (["seeds=[1.5]"], 2, r"seeds must be a non-empty list"),
        # the user's own folder (item 6)
        (["out={mine}"], 2, r"out=.*mine is an existing folder that flipsketch did not write"),
        (["out={tmp}/inputs"], 2, r"existing folder that flipsketch did not write"),
        # Hydra flags and targets (item 7): animate takes only --config-dir (a folder of your configs)
        (["--config-dir={cdir}", "sampler.num_frames=abc"], 2, r"sampler\.num_frames must be an integer"),
        (["--config-dir={tmp}/nowhere"], 2, r"config folder not found"),
        (["-cn", "train"], 2, r"unknown option '-cn'"),
        (["--multirun"], 2, r"unknown option '--multirun'"),
        (["model._target_=os.system"], 2, r"model\._target_='os\.system' is not allowed"),
        (["model._target_=subprocess.run"], 2, r"is not allowed"),
        (["model._target_=${{oc.env:HOME}}"], 2, r"a _target_ is a plain dotted name"),
        # text that is a quoting problem, not a prompt
        (["prompt=${{"], 2, r"cannot read 'prompt=\$\{'.*quoted"),
        # a few of the older kinds
        (["sampler.num_frames=abc"], 2, r"sampler\.num_frames must be an integer"),
        (["sampler.guidance_scale=nan"], 2, r"guidance_scale must be a finite number"),
        (["sampler.lamda_=0.3"], 2, r"did you mean sampler\.lambda_\?"),
        (["prompt= "], 2, r"prompt is empty"),
        (["sketch=/nonexistent/sketch.png"], 2, r"sketch not found"),
        (["out={file}"], 2, r"existing file"),
        (["--verbose"], 2, r"unknown option '--verbose'"),
    ],
    "train": [
        (["seed=" + BIG], 2, r"seed must be <= 4294967295"),
        (["seed=-5"], 2, r"seed must be >= 0"),
        (["--config-dir={cdir}", "trainer.max_steps=abc"], 2, r"trainer\.max_steps must be an integer"),
        (["trainer.max_steps=abc", "--config-dir={cdir}"], 2, r"trainer\.max_steps must be an integer"),
        (["-cd", "{cdir}", "experiment=mine", "seed=-1"], 2, r"seed must be >= 0"),
        (["-cd", "{cdir}", "experiment=mine"], 2, r"dataset folder not found"),  # its own setting seen
        (
            ["--config-dir={tmp}/nowhere"],
            2,
            r"config folder not found: .*nowhere \(given with --config-dir\)",
        ),
        (["-cd"], 2, r"-cd needs a folder"),
        (["-cn", "eval"], 2, r"-cn is not supported: flipsketch-train always composes conf/train\.yaml"),
        (["--config-name=eval"], 2, r"--config-name is not supported"),
        (["--config-path", "{tmp}"], 2, r"--config-path is not supported"),
        (["--experimental-rerun", "{file}"], 2, r"--experimental-rerun is not supported"),
        (["--cfg", "jobs"], 2, r"--cfg takes job, hydra or all"),
        (["--cfg", "job", "modle=tiny"], 2, r"unknown setting 'modle'"),
        (["--info", "trainer.max_stepz=3"], 2, r"unknown setting 'trainer\.max_stepz'"),
        (["--run", "trainer.max_steps=abc"], 2, r"trainer\.max_steps must be an integer"),
        (["--multirun", "trainer.max_steps=4,abc"], 2, r"trainer\.max_steps must be an integer"),
        (["-m", "seed=0," + BIG], 2, r"seed must be <= 4294967295"),
        (["module.optimizer._target_=os.system"], 2, r"module\.optimizer\._target_='os\.system' is not"),
        (["+callbacks.evil._target_=subprocess.Popen"], 2, r"callbacks\.evil\._target_=.* is not allowed"),
        (["+callbacks.evil={{_target_: builtins.eval}}"], 2, r"callbacks\.evil\._target_=.* is not allowed"),
        (["+hydra.callbacks.evil._target_=os.system"], 2, r"hydra\.callbacks\.evil\._target_=.* not allowed"),
        (["hydra.run.dir={mine}"], 2, r"the run folder .*mine is an existing folder that flipsketch did not"),
        (["trainer.max_steps=abc"], 2, r"trainer\.max_steps must be an integer"),
        (["data.num_frames=2.5"], 2, r"data\.num_frames must be an integer"),
        (["--fast"], 2, r"unknown option '--fast'"),
    ],
    "eval": [
        (["seeds=[" + BIG + "]"], 2, r"seeds: a seed must be at most 4294967295"),
        (["seeds=[-3]"], 2, r"non-negative integers"),
        (["samples_dir={mine}"], 2, r"samples_dir=.*mine is an existing folder that flipsketch did not"),
        (["-cn", "train"], 2, r"-cn is not supported: flipsketch-eval"),
        (["--config-dir={cdir}", "sampler.num_frames=abc"], 2, r"sampler\.num_frames must be an integer"),
        (["+hydra.callbacks.x._target_=posix.system"], 2, r"not allowed"),
        (["--experimental-rerun={file}"], 2, r"--experimental-rerun is not supported"),
        (["methods=[fulll]"], 2, r"did you mean full\?"),
        (["stats.bootstrap=5"], 2, r"stats\.bootstrap must be >= 100"),
        (["stats.confidence=95"], 2, r"stats\.confidence must be a number between 0\.5 and 1"),
        (["+stats.resamples=10"], 2, r"stats\.resamples is not a setting"),
    ],
    "export": [
        (["out={mine}"], 2, r"out=.*mine is an existing folder that flipsketch did not write"),
        (["-cn", "train"], 2, r"-cn is not supported: flipsketch-export"),
        (["--config-dir={cdir}", "merged=maybe"], 2, r"merged must be true or false"),
        (["+hydra.callbacks.x._target_=os.system"], 2, r"not allowed"),
        (["merged=maybe"], 2, r"merged must be true or false"),
    ],
    "data_gen": [
        (["out={mine}"], 2, r"out=.*mine is an existing folder that flipsketch did not write"),
        (["seed=" + BIG], 2, r"seed must be <= 4294967295"),
        (["seed=-1"], 2, r"seed must be >= 0"),
        (["-cn", "train"], 2, r"-cn is not supported: flipsketch-data_gen"),
        (["--config-dir={cdir}", "size=abc"], 2, r"size must be an integer"),
        (["+hydra.callbacks.x._target_=os.system"], 2, r"not allowed"),
        (["size=abc"], 2, r"size must be an integer"),
    ],
    "app": [  # the command line of flipsketch-app (its page is APP_PAGE below)
        (["results={mine}"], 2, r"results=.*mine is an existing folder that flipsketch did not write"),
        (["max_upload=abc"], 2, r"max_upload must be a size such as 10MB"),
        (["max_upload=5TB"], 2, r"max_upload must be a size"),
        (["max_upload=10"], 2, r"max_upload must be between 1kB and 1GB"),
        (["port=http"], 2, r"port must be an integer"),
        (["--config-dir=/tmp"], 2, r"unknown option '--config-dir=/tmp'"),
        (["sampler.lamda_=0.3"], 2, r"did you mean sampler\.lambda_\?"),
    ],
}


def _mains():
    from data_gen.__main__ import main as data_gen_main
    from flipsketch.animate import main as animate_main
    from flipsketch.app import main as app_main
    from flipsketch.eval import main as eval_main
    from flipsketch.export import main as export_main
    from flipsketch.train import main as train_main

    return {
        "animate": animate_main,
        "train": train_main,
        "eval": eval_main,
        "export": export_main,
        "data_gen": data_gen_main,
        "app": app_main,
    }


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under root: (kind, size, mtime). Equal before and after = nothing written."""
    out = {}
    for p in root.rglob("*"):
        st = p.lstat()
        out[str(p.relative_to(root))] = ("dir", 0, 0) if p.is_dir() else ("file", st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def table_world(world):  # noqa: F811
    """The shared inputs plus the user's own folder ({mine}) and a folder of extra configs ({cdir})."""
    tmp = Path(world["tmp"])
    mine = tmp / "mine"
    (mine / "seed0").mkdir(parents=True)
    (mine / "seed0" / "notes.txt").write_text("the user's own work")
    cdir = tmp / "cdir"
    (cdir / "experiment").mkdir(parents=True)
    (cdir / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: tiny\nseed: 7\n"
    )
    return {**world, "mine": str(mine), "cdir": str(cdir), **bad_config_dirs(tmp)}


# ------------------------------------------- configs are data, bounded (issue 36 items 1 and 3)
# Every callable of the issue, from an override, hydra.callbacks, a logging handler and a config
# folder; then config folders that are too big, an alias bomb, a python tag, broken YAML.
_PAYLOADS = [
    "torch.load", "numpy.load", "pandas.read_pickle", "io.open", "pathlib.Path.write_text",
    "builtins.eval", "os.system", "flipsketch.atomic.os.system",
]  # fmt: skip
ALLOWLIST_CASES = {
    "train": [
        *[(["+callbacks.x._target_=" + t], 2, re.escape(f"callbacks.x._target_='{t}' is not allowed")) for t in _PAYLOADS],
        *[(["+hydra.callbacks.x._target_=" + t], 2, r"hydra\.callbacks\.x\._target_=.*FLIPSKETCH_ALLOW_TARGETS") for t in _PAYLOADS[:3]],
        (["+hydra.job_logging.handlers.f={{class: logging.FileHandler, filename: {tmp}/pwn.log}}"], 2,
         r"hydra\.job_logging\.handlers\.f\.class='logging\.FileHandler' is not allowed"),
        (["hydra.job_logging.handlers.file.filename={tmp}/pwn.log"], 2, r"logging\.FileHandler' is not allowed"),
        (["--config-dir={ylog}", "experiment=mine"], 2, r"handlers\.g\.\(\)='io\.open' is not allowed"),
        (["hydra.job_logging.handlers.console.stream=ext://os.system"], 2, r"'ext://os\.system' is not allowed"),
        (["--config-dir={ytgt}", "experiment=mine"], 2, r"callbacks\.evil\._target_='pandas\.read_pickle' is not allowed"),
        (["--config-dir={ybomb}", "experiment=mine"], 2, r"mine\.yaml: the config expands to more than 200000 values"),
        (["--config-dir={ytag}", "experiment=mine"], 2, r"mine\.yaml line 2: the YAML tag '.*python/object/apply:os\.system' is not allowed"),
        (["--config-dir={ybad}", "experiment=mine"], 2, r"mine\.yaml line 3: not valid YAML"),
        (["--config-dir={ybig}", "experiment=mine"], 2, r"mine\.yaml: a config file may be at most 1 MB"),
        (["hydra.searchpath=[file://{ytag}]", "experiment=mine"], 2, r"the YAML tag .* is not allowed"),
    ],
    "eval": [(["+hydra.callbacks.x._target_=" + t], 2, r"is not allowed") for t in ("numpy.load", "io.open")]
    + [(["--config-dir={ybomb}", "experiment=mine"], 2, r"expands to more than")],
    "animate": [(["model._target_=torch.load"], 2, r"model\._target_='torch\.load' is not allowed"),
                (["--config-dir={ytag}", "experiment=mine"], 2, r"the YAML tag")],
    "export": [(["+hydra.callbacks.x._target_=pathlib.Path.write_text"], 2, r"is not allowed")],
}  # fmt: skip
for _cli, _cases in ALLOWLIST_CASES.items():
    CASES[_cli] = [*CASES[_cli], *_cases]


def bad_config_dirs(tmp: Path) -> dict[str, str]:
    """Config folders ({ytgt} {ylog} {ybomb} {ytag} {ybad} {ybig}) each holding one bad experiment/mine.yaml."""
    bomb = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    texts = {
        "ytgt": "callbacks:\n  evil:\n    _target_: pandas.read_pickle\n    filepath_or_buffer: x.pkl\n",
        "ybomb": "\n".join(bomb) + "\n",
        "ytag": f"x: !!python/object/apply:os.system ['touch {tmp}/pwn']\n",
        "ylog": f"hydra:\n  job_logging:\n    handlers:\n      g: {{'()': io.open, file: {tmp}/pwn}}\n",
        "ybad": "x: 1\n  y: [\n",
        "ybig": "x: " + "a" * 1_100_000 + "\n",
    }
    out = {}
    for name, text in texts.items():
        (tmp / name / "experiment").mkdir(parents=True)
        (tmp / name / "experiment" / "mine.yaml").write_text("# @package _global_\n" + text)
        out[name] = str(tmp / name)
    return out


FLAT = [(cli, *case) for cli, cases in CASES.items() for case in cases]


@pytest.mark.parametrize(
    "cli, args, code, pattern", FLAT, ids=[f"{c}: {' '.join(a)[:80]}" for c, a, _, _ in FLAT]
)
def test_bad_input(table_world, capsys, models_built, cli, args, code, pattern):  # noqa: F811
    if cli == "app":
        pytest.importorskip("gradio")
    main = _mains()[cli]
    argv = [a.format(**table_world) for a in [*BASE[cli], *args]]
    root = Path(table_world["tmp"])
    before = snapshot(root)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert exc.value.code == code, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in out + err
    assert snapshot(root) == before, "a refused run wrote something"
    assert not models_built


# ------------------------------------------------------------------------- through the scripts
SUBPROCESS = [  # (console script, argv, exit code, message regex): the real entry points, cold
    ("flipsketch-train", ["--config-dir={cdir}", *BASE["train"], "seed=" + BIG], 2, r"seed must be <="),
    ("flipsketch-animate", [*BASE["animate"], "out={mine}"], 2, r"did not write"),
]


@pytest.mark.parametrize("script, args, code, pattern", SUBPROCESS, ids=[s for s, *_ in SUBPROCESS])
def test_bad_input_through_the_console_script(table_world, script, args, code, pattern):
    exe = Path(sys.executable).with_name(script)
    if not exe.is_file():
        pytest.skip(f"{script} is not installed next to {sys.executable}")
    root = Path(table_world["tmp"])
    before = snapshot(root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    argv = [a.format(**table_world) for a in args]
    r = subprocess.run([str(exe), *argv], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == code, r.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(pattern, lines[0]), r.stderr
    assert snapshot(root) == before


# ---------------------------------------------------------------------------------- the page
# (what the Animate button sends, the page's one-line message); every other input is a good one
APP_PAGE = [
    ({"seeds": BIG}, r"seeds: a seed must be at most 4294967295"),
    ({"seeds": HUGE}, r"a seed must be at most"),
    ({"seeds": "0, 4294967296"}, r"a seed must be at most"),
    ({"seeds": "-1"}, r"non-negative integers"),
    ({"seeds": "1e30"}, r"seeds must be whole numbers"),
    ({"seeds": "0 1 2 3 4"}, r"at most 4 seeds"),
    ({"prompt": "  "}, r"prompt is empty"),
    ({"lambda_": "${{oc.env:HOME}}"}, r"lambda must be a number"),
    ({"lambda_": float("nan")}, r"lambda must be a finite number"),
    ({"steps": 2.5}, r"steps must be a whole number"),
    ({"frames": "many"}, r"frames must be a number"),
    ({"model": "../../etc"}, r"unknown model"),
    ({"upload": "{big}"}, r"the upload is 120 kB, more than the 50 kB this page accepts \(app setting max_upload\)"),
    ({"upload": "{junk}"}, r"cannot read sketch junk\.png"),
    ({"upload": None}, r"no sketch: upload an image"),
]  # fmt: skip


@pytest.fixture(scope="module")
def page_app(tmp_path_factory):
    pytest.importorskip("gradio")
    from flipsketch.app import FlipSketchApp

    root = tmp_path_factory.mktemp("page")
    draw_sketch(96).save(root / "sketch.png")
    (root / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(120_000))
    (root / "junk.png").write_bytes(b"not an image")
    app = FlipSketchApp(["device=cpu", "model=tiny"], root / "results", keep=3, max_upload=50_000)
    return app, root


@pytest.mark.parametrize("inputs, pattern", APP_PAGE, ids=[str(i) for i, _ in APP_PAGE])
def test_bad_page_input(page_app, inputs, pattern):
    app, root = page_app
    files = {"big": str(root / "big.png"), "junk": str(root / "junk.png")}
    args = {"upload": str(root / "sketch.png"), "prompt": "a ball bouncing", "seeds": "0", "model": "tiny"}
    args |= {"lambda_": 0.5, "steps": 2, "frames": 3}
    args.update({k: v.format(**files) if isinstance(v, str) else v for k, v in inputs.items()})
    before = snapshot(root)
    status, *shown = app.run(
        args["upload"], None, "upload", args["prompt"], args["lambda_"], args["steps"], args["frames"],
        False, args["seeds"], args["model"],
    )  # fmt: skip
    assert status.startswith("**Error:** ") and "\n" not in status and "Traceback" not in status, status
    assert re.search(pattern, status), status
    assert shown == [None, None, "", [], []]
    after = snapshot(root)
    assert {k: v for k, v in after.items() if ".flipsketch-run" not in k and k != "results"} == {
        k: v for k, v in before.items() if ".flipsketch-run" not in k and k != "results"
    }, "a refused request left something in the results folder"
