"""Where a resumed training run continues: the run folder of the checkpoint it resumes (one history of
checkpoints, logs and LoRA export), or a stable folder per SLURM job, so a requeued job finds its
hpc checkpoint again. flipsketch-train applies it to its arguments before composing."""

from __future__ import annotations

from pathlib import Path


def _override_value(text: str) -> str:
    """A path as a Hydra override value (quoted when Hydra's lexer needs it)."""
    import re

    from ..cli import hydra_quoted

    return text if re.fullmatch(r"[A-Za-z0-9_\-+./:@]+", text) else hydra_quoted(text)


def resume_in_place(argv: list[str]) -> list[str]:
    """The run folder a resumed run keeps: `ckpt_path=<run>/checkpoints/X.ckpt` continues in <run>
    (hydra.run.dir=<run>: the same checkpoints/, logs and LoRA export, one history), and a SLURM job
    with trainer=slurm runs in <log_dir>/train/slurm/<job id>, so a requeued job (same id) finds its
    hpc checkpoint and its folder again. An explicit hydra.run.dir, or a multirun, is left alone."""
    import os

    from ..cli import raw_compose, split_argv

    flags, overrides = split_argv(argv)
    keys = [o.lstrip("+~").partition("=")[0] for o in overrides]
    if flags or "hydra.run.dir" in keys:
        return list(argv)
    ckpt = next((o.partition("=")[2] for o in overrides if o.partition("=")[0] == "ckpt_path"), "")
    ckpt = ckpt.strip("'\"")
    if ckpt:
        path = Path(ckpt).expanduser().absolute()
        run = path.parent.parent
        if path.is_file() and path.parent.name == "checkpoints" and (run / ".hydra").is_dir():
            return [*argv, f"hydra.run.dir={_override_value(str(run))}"]
        return list(argv)
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
            job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        try:
            choice = raw_compose("train", overrides, return_hydra_config=True).hydra.runtime.choices.trainer
        except Exception:  # noqa: BLE001 - the precheck reports a config that does not compose
            return list(argv)
        if choice == "slurm":
            return [*argv, f"hydra.run.dir=${{paths.log_dir}}/${{task_name}}/slurm/{_override_value(job)}"]
    return list(argv)
