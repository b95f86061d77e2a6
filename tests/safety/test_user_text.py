"""User text is data (issue 25, item 1): a prompt such as `${oc.env:SECRET}` typed on the command
line or into the web page is recorded as exactly those characters, never resolved by OmegaConf,
and no file the page can fetch holds a value of the server's environment."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from flipsketch.checks import literal_text
from flipsketch.cli import compose_config, literal_text_overrides
from tests.conftest import draw_sketch

SENTINEL = "FLIPSKETCH_TEST_SENTINEL"
SECRET = "sentinel-93f1-do-not-leak"
TRICKY = [
    "${oc.env:FLIPSKETCH_TEST_SENTINEL}",
    "a cat ${oc.env:FLIPSKETCH_TEST_SENTINEL} jumping",
    "\\${oc.env:FLIPSKETCH_TEST_SENTINEL}",
    "a\\\\${oc.env:FLIPSKETCH_TEST_SENTINEL}",
    "${oc.decode:'1'}",
    "${a${b}}",
    "${",
    "x}${",
    "$${{}}",
    "a\\b ${prompt} \\",
    "a cat jumping",  # a normal prompt is unchanged
    "",
]


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv(SENTINEL, SECRET)


def _no_secret_under(folder: Path) -> None:
    for p in Path(folder).rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), f"{p} holds the server's environment"


@pytest.mark.parametrize("text", TRICKY)
def test_literal_text_reads_back_as_itself(secret_env, text):
    cfg = OmegaConf.create({"p": None})
    cfg.p = literal_text(text)
    assert cfg.p == text
    assert OmegaConf.to_container(cfg, resolve=True)["p"] == text


@pytest.mark.parametrize("text", [t for t in TRICKY if t and "'" not in t and not t.endswith("\\")])
@pytest.mark.parametrize("key", ["prompt", "sampler.negative_prompt"])
def test_a_text_override_is_literal(secret_env, text, key):
    """`prompt='TEXT'` (Hydra-quoted, as the help says to type it): the config holds TEXT."""
    cfg = compose_config("animate", literal_text_overrides([f"{key}='{text}'"]))
    assert OmegaConf.select(cfg, key) == text
    assert SECRET not in yaml.safe_dump(OmegaConf.to_container(cfg.sampler, resolve=True))


def test_unquoted_and_listed_text_overrides(secret_env):
    cfg = compose_config("animate", literal_text_overrides(["prompt=${oc.env:FLIPSKETCH_TEST_SENTINEL}"]))
    assert cfg.prompt == "${oc.env:FLIPSKETCH_TEST_SENTINEL}"
    argv = literal_text_overrides(
        ["callbacks.sample_videos.prompts=[a,'${oc.env:FLIPSKETCH_TEST_SENTINEL}']"]
    )
    cfg = compose_config("train", ["experiment=tiny_smoke", *argv])
    assert list(cfg.callbacks.sample_videos.prompts) == ["a", "${oc.env:FLIPSKETCH_TEST_SENTINEL}"]
    items = "benchmark.items=[{sketch: a.png, prompt: '${oc.env:FLIPSKETCH_TEST_SENTINEL}'}]"
    cfg = compose_config("eval", ["experiment=tiny_table1", *literal_text_overrides([items])])
    assert cfg.benchmark["items"][0].prompt == "${oc.env:FLIPSKETCH_TEST_SENTINEL}"
    # settings that are not text keep Hydra's interpolations (a path built from the environment)
    assert literal_text_overrides(["paths.log_dir=${oc.env:HOME}/x"]) == ["paths.log_dir=${oc.env:HOME}/x"]


FAST = [
    "model=tiny",
    "sampler.num_frames=2",
    "sampler.num_inference_steps=2",
    "sampler.align=false",
    "progress=false",
    "output.formats=[gif,png]",
]


def test_animate_records_the_prompt_as_typed(secret_env, tmp_path, sketch_png):
    from flipsketch.animate import main

    prompt = "a cat ${oc.env:FLIPSKETCH_TEST_SENTINEL} jumping"
    negative = "${oc.env:FLIPSKETCH_TEST_SENTINEL}"
    out = tmp_path / "out"
    argv = [f"sketch={sketch_png}", f"prompt={prompt}", f"sampler.negative_prompt={negative}", f"out={out}"]
    assert main([*argv, *FAST]) == 0
    meta = json.loads((out / "seed0" / "meta.json").read_text())
    assert meta["prompt"] == prompt and meta["sampler"]["negative_prompt"] == negative
    recorded = yaml.safe_load((out / "config.yaml").read_text())
    assert recorded["prompt"] == prompt and recorded["sampler"]["negative_prompt"] == negative
    _no_secret_under(out)


# ------------------------------------------------------------------------------ the real app
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    pytest.importorskip("gradio")
    pytest.importorskip("gradio_client")
    from flipsketch.app import FlipSketchApp, build_demo, launch

    mp = pytest.MonkeyPatch()
    mp.setenv(SENTINEL, SECRET)  # the server's environment holds a secret
    results = tmp_path_factory.mktemp("results")
    app = FlipSketchApp(["device=cpu", "model=tiny"], results, max_upload=100_000)
    demo = build_demo(app)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(demo, app, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}", app
    demo.close()
    mp.undo()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_page_never_evaluates_user_text(served, tmp_path):
    from gradio_client import Client, handle_file

    url, app = served
    prompt = "${oc.env:FLIPSKETCH_TEST_SENTINEL}"
    upload = tmp_path / "${oc.env:FLIPSKETCH_TEST_SENTINEL}.png"  # the file's name is user text too
    draw_sketch(96).save(upload)
    client = Client(url + "/", verbose=False, download_files=str(tmp_path / "downloads"))
    status, gif, *_ = client.predict(
        handle_file(str(upload)), None, prompt, 0.5, 2, 2, False, "0", "tiny", api_name="/run_live"
    )
    assert status.startswith("Done in"), status
    (run,) = [p for p in app.results.iterdir() if p.name.startswith("run-")]
    # what the run recorded, fetched over HTTP as any page visitor could
    code, body = _get(f"{url}/gradio_api/file={urllib.parse.quote(str(run / 'seed0' / 'meta.json'))}")
    assert code == 200 and json.loads(body)["prompt"] == prompt
    assert SECRET.encode() not in body
    code, body = _get(f"{url}/gradio_api/file={urllib.parse.quote(str(run / 'config.yaml'))}")
    assert code == 200 and yaml.safe_load(body)["prompt"] == prompt and SECRET.encode() not in body
    # every file the page can fetch (the results folder), and what it was sent
    _no_secret_under(app.results)
    _no_secret_under(tmp_path / "downloads")
    assert SECRET not in status


def test_an_upload_over_the_limit_is_refused(served, tmp_path):
    url, app = served
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200_000))
    boundary = "flipsketchboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + big.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        f"{url}/gradio_api/upload",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            code, text = r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        code, text = exc.code, exc.read().decode(errors="replace")
    assert code == 413 or code >= 400, (code, text[:300])  # the server refuses it before storing it
    # and a file that got onto the server some other way: one line in the page
    status = app.run(str(big), None, "upload", "a cat", 0.5, 2, 2, False, "0", "tiny")[0]
    assert status == (
        "**Error:** the upload is 200 kB, more than the 100 kB this page accepts (app setting max_upload)"
    )
