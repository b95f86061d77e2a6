"""Baselines without a diffusers port (DynamiCrafter, ...): run their own program, or import its outputs.

Command mode: `command` is an argument list; `{image}` `{prompt}` `{out}` `{seed}` `{num_frames}` `{size}`
`{steps}` `{guidance}` `{item}` `{input_dir}` are filled in (one pass, so a prompt containing braces
stays as typed) and the program runs without a shell. It gets a fresh input folder holding
`input.png` and the prompt (`prompt.txt`, `test_prompts.txt`), and must leave its frames in `{out}`:
frame images, or one video file anywhere below it.

Folder mode: `outputs` holds precomputed videos named per benchmark item (and optionally seed):
`<outputs>/<item>/seed<S>/`, `<outputs>/<item>/seed<S>.mp4`, `<outputs>/<item>/` or `<outputs>/<item>.mp4`
(GIF/WebM too). `names` maps an item id to another name when the files are named differently.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import Baseline, fit_frames, register_baseline
from .frames_io import VIDEO_SUFFIXES, read_clip

PLACEHOLDERS = (
    "image",
    "prompt",
    "out",
    "seed",
    "num_frames",
    "size",
    "steps",
    "guidance",
    "item",
    "input_dir",
)
_FIELD = re.compile(r"\{(\w+)\}")


def fill(template: str, values: dict) -> str:
    """Replace `{name}` fields in one pass; unknown fields are left as typed."""
    return _FIELD.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


@register_baseline("external")
class ExternalBaseline(Baseline):
    def __init__(
        self,
        command: list[str] | None = None,
        outputs: str | None = None,
        names: dict | None = None,
        cwd: str | None = None,
        env: dict | None = None,
        timeout: float = 3600.0,
        input_size: int | None = None,
        keep_outputs: bool = False,
        text_conditioned: bool = True,
        **base,
    ):
        super().__init__(**base)
        self.command = None if command is None else [str(a) for a in command]
        self.outputs = None if outputs in (None, "") else Path(str(outputs)).expanduser()
        self.names = {str(k): str(v) for k, v in (names or {}).items()}
        self.cwd, self.env, self.timeout = (
            cwd,
            {str(k): str(v) for k, v in (env or {}).items()},
            float(timeout),
        )
        self.input_size, self.keep_outputs = input_size, bool(keep_outputs)
        self.text_conditioned = bool(text_conditioned)
        key = f"baseline.{self.name}"
        if (self.command is None) == (self.outputs is None):
            raise UserError(
                f"{self.label}: set exactly one of {key}.command=[program,arg,...] (run it per item) "
                f"or {key}.outputs=DIR (precomputed videos per item)"
            )
        if self.command is not None:
            if not self.command:
                raise UserError(f"{key}.command is empty")
            unknown = sorted({m for a in self.command for m in _FIELD.findall(a)} - set(PLACEHOLDERS))
            if unknown:
                raise UserError(
                    f"{key}.command: unknown placeholder(s) {unknown}; known: {', '.join(PLACEHOLDERS)}"
                )
        elif not self.outputs.is_dir():
            raise UserError(f"{self.label}: outputs folder not found: {self.outputs} (set {key}.outputs=DIR)")

    def settings(self) -> dict:
        return {
            **super().settings(),
            "command": self.command,
            "outputs": None if self.outputs is None else str(self.outputs),
            "names": self.names,
            "input_size": self.input_size,
        }

    def generate(self, image, prompt, num_frames, size, steps, guidance, seed, item=None):
        item_id = str(getattr(item, "id", "item"))
        if self.outputs is not None:
            return fit_frames(read_clip(self.find_output(item_id, seed)), size)
        return fit_frames(
            self.run_command(image, prompt, num_frames, size, steps, guidance, seed, item_id), size
        )

    def find_output(self, item_id: str, seed: int) -> Path:
        name = self.names.get(item_id, item_id)
        base = self.outputs / name
        candidates = [
            base / f"seed{seed}",
            *(base / f"seed{seed}{s}" for s in VIDEO_SUFFIXES),
            base,
            *(self.outputs / f"{name}{s}" for s in VIDEO_SUFFIXES),
        ]
        for c in candidates:
            if c.exists():
                return c
        raise UserError(
            f"{self.label}: no output for item {item_id!r} seed {seed} under {self.outputs} "
            f"(expected {name}/seed{seed}/, {name}/ or {name}.mp4; map ids with baseline.{self.name}.names)"
        )

    def run_command(self, image, prompt, num_frames, size, steps, guidance, seed, item_id) -> np.ndarray:
        if image is None:
            raise UserError(f"{self.label} needs the sketch image")
        work = Path(tempfile.mkdtemp(prefix=f"flipsketch-{self.name}-"))
        try:
            inp, out = work / "input", work / "out"
            inp.mkdir()
            out.mkdir()
            side = int(self.input_size or size)
            image.convert("RGB").resize((side, side)).save(inp / "input.png")
            for name in ("prompt.txt", "test_prompts.txt"):
                (inp / name).write_text((prompt or "") + "\n", encoding="utf-8")
            values = dict(
                image=inp / "input.png",
                prompt=prompt or "",
                out=out,
                seed=seed,
                num_frames=num_frames,
                size=size,
                steps=steps,
                guidance=guidance,
                item=item_id,
                input_dir=inp,
            )
            args = [fill(a, values) for a in self.command]
            self._run(args)
            return read_clip(out)
        finally:
            if not self.keep_outputs:
                shutil.rmtree(work, ignore_errors=True)

    def _run(self, args: list[str]) -> None:
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                args,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                check=False,
            )
        except FileNotFoundError:
            raise UserError(f"{self.label}: program not found: {args[0]}") from None
        except subprocess.TimeoutExpired:
            raise UserError(
                f"{self.label}: command took longer than {self.timeout:g} s (baseline.{self.name}.timeout)"
            ) from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()
            last = tail[-1][:200] if tail else "no output"
            raise UserError(
                f"{self.label}: command exited with {proc.returncode} after "
                f"{time.perf_counter() - t0:.1f} s: {last}"
            )


@register_baseline("dynamicrafter")
class DynamiCrafterBaseline(ExternalBaseline):
    """DynamiCrafter (image + text -> video). No diffusers port: its own inference script via
    `command`, or a folder of its outputs via `outputs` (see conf/baseline/dynamicrafter.yaml)."""

    def __init__(self, label: str | None = "DynamiCrafter", **kwargs):
        super().__init__(label=label, **kwargs)
