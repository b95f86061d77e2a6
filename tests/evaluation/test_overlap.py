"""Train/eval overlap: evaluation warns when a LoRA was trained on benchmark sketches."""

from __future__ import annotations

import hashlib
from pathlib import Path

from data_gen.build import HELDOUT_SKETCHES, SHIPPED_SKETCHES
from flipsketch.evaluation import run_eval
from flipsketch.evaluation.benchmark import BenchmarkItem
from flipsketch.evaluation.overlap import lora_train_sources, overlap_warnings, overlapping
from flipsketch.models.lora import add_lora, save_lora
from tests.evaluation.test_eval import FAST


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _item(stem: str) -> BenchmarkItem:
    svg = SHIPPED_SKETCHES / f"{stem}.svg"
    return BenchmarkItem(id=stem, sketch=svg, prompt="p", source=svg, sha="")


def _lora(tmp_path: Path, sources: list[dict], model) -> Path:
    unet = model.unet
    add_lora(unet, rank=2)
    return save_lora(tmp_path / "lora", unet, extra={"train_sources": sources})


def test_overlap_by_bytes_and_by_name_for_old_datasets():
    items = [_item("cat"), _item("fish"), _item("tree")]
    assert overlapping(items, [{"name": "renamed", "sha256": _sha(SHIPPED_SKETCHES / "cat.svg")}]) == ["cat"]
    # same name, other bytes: a different sketch, no overlap
    assert overlapping(items, [{"name": "fish", "sha256": "0" * 64}]) == []
    assert overlapping(items, [{"name": "tree", "sha256": None}]) == ["tree"]  # no hash recorded
    assert overlapping(items, []) == []


def test_lora_metadata_round_trip_and_warning(tmp_path, fresh_tiny):
    sources = [{"name": s, "sha256": _sha(SHIPPED_SKETCHES / f"{s}.svg")} for s in ("cat", "tree")]
    path = _lora(tmp_path, sources, fresh_tiny())
    assert lora_train_sources(path) == sources
    items = [_item(s) for s in HELDOUT_SKETCHES]
    (line,) = overlap_warnings({"lora": str(path)}, items)
    assert "trained on 1 of the 8 benchmark sketches (cat)" in line
    assert overlap_warnings({"lora": str(_lora(tmp_path / "b", sources[1:], fresh_tiny()))}, items) == []
    assert overlap_warnings({"lora": None}, items) == []


def test_eval_prints_and_tables_the_overlap(tmp_path, capsys, fresh_tiny):
    sources = [{"name": "cat", "sha256": _sha(SHIPPED_SKETCHES / "cat.svg")}]
    lora = _lora(tmp_path, sources, fresh_tiny())
    out = run_eval(
        [
            *FAST,
            "methods=[full]",
            "logger=none",
            f"model.lora={lora}",
            f"paths.log_dir={tmp_path}",
            f"paths.output_dir={tmp_path / 'run'}",
        ]
    )
    assert len(out["overlap"]) == 1 and "(cat)" in out["overlap"][0]
    assert "Train/eval overlap" in Path(out["results_md"]).read_text()
    assert "warning: the LoRA" in capsys.readouterr().err
