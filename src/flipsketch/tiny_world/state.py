"""What makes every tiny-world stage resumable: its state under `--run/<stage>/`.

`state.safetensors` (weights, EMA) + `optim.pt` (optimizer, loaded with weights_only=True) +
`progress.json` (step, wall time, ...), replaced together after all three are written; `log.jsonl`
one row per logged step. Also: starting a module from a model folder (`--init`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..atomic import atomic_paths
from ..errors import UserError


def save_state(run: Path, modules: dict, opt, step: int, extra: dict) -> None:
    from safetensors.torch import save_file

    run.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{k}.{n}": t.detach().contiguous().cpu()
        for k, m in modules.items()
        for n, t in m.state_dict().items()
    }
    with atomic_paths(run / "state.safetensors", run / "optim.pt", run / "progress.json") as (st, op, pr):
        save_file(tensors, str(st))
        torch.save(opt.state_dict(), op)
        pr.write_text(json.dumps({"step": step, **extra}, indent=1))


def load_state(run: Path, modules: dict, opt) -> dict:
    from safetensors.torch import load_file

    if not (run / "progress.json").exists():
        return {"step": 0}
    tensors = load_file(str(run / "state.safetensors"))
    for k, m in modules.items():
        m.load_state_dict({n[len(k) + 1 :]: t for n, t in tensors.items() if n.startswith(k + ".")})
    if opt is not None and (run / "optim.pt").exists():
        opt.load_state_dict(torch.load(run / "optim.pt", weights_only=True))
    return json.loads((run / "progress.json").read_text())


def read_progress(run: Path) -> dict:
    """A stage's progress.json (older runs without `seconds`: the log's last time)."""
    prog = json.loads((run / "progress.json").read_text())
    if "seconds" not in prog and (run / "log.jsonl").exists():
        rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
        prog["seconds"] = float(rows[-1]["t"]) if rows else 0.0
    return prog


def log_row(run: Path, row: dict) -> None:
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "log.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def warmup_lr(step: int, base: float, warmup: int) -> float:
    return base * min(1.0, (step + 1) / max(1, warmup))


@torch.no_grad()
def ema_update(pairs, step: int, cap: float) -> None:
    """EMA weights follow the trained ones: decay min(cap, (1 + step) / (10 + step)) (fast at first).
    `pairs`: (trained module, its EMA copy), ..."""
    d = min(cap, (1 + step) / (10 + step))
    for src, dst in pairs:
        for pe, p in zip(dst.parameters(), src.parameters(), strict=True):
            pe.lerp_(p, 1 - d)


def require(path: Path, stage: str) -> None:
    if not path.exists():
        raise UserError(f"{path} not found: run `--stage {stage}` first (same --run)")


def init_from_folder(module, folder: Path | None) -> bool:
    """Start `module` from the weights of a diffusers/transformers subfolder (e.g. the shipped model)."""
    if folder is None:
        return False
    from safetensors.torch import load_file

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        return False
    missing, unexpected = module.load_state_dict(load_file(str(files[0])), strict=False)
    if unexpected or len(missing) > 0:
        print(f"init from {folder}: {len(missing)} missing, {len(unexpected)} unexpected keys", flush=True)
    print(f"init from {folder}", flush=True)
    return True


def copy_init_source(folder: Path) -> Path:
    """Copy an --init model folder aside: export overwrites the shipped folder it usually names."""
    import shutil
    import tempfile

    if not (folder / "unet").is_dir() and not (folder / "vae").is_dir():
        raise UserError(f"--init {folder}: not a model folder (no unet/ or vae/)")
    dst = Path(tempfile.mkdtemp(prefix="tiny_world_init_"))
    for sub in ("vae", "unet", "text_encoder"):
        if (folder / sub).is_dir():
            shutil.copytree(folder / sub, dst / sub)
    return dst
