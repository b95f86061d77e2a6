"""MODEL_CARD.md of the tiny-world scorers, from what the training run measured (quality.json)."""

from __future__ import annotations

import json
from pathlib import Path


def write_card(out: Path, quality: dict, command: str) -> None:
    """Merge `quality` into out/quality.json and write out/MODEL_CARD.md from it."""
    out.mkdir(parents=True, exist_ok=True)
    qf = out / "quality.json"
    q = json.loads(qf.read_text()) if qf.is_file() else {}
    for k, v in quality.items():
        q[k] = {**v, "command": command}
    qf.write_text(json.dumps(q, indent=1, sort_keys=True))
    lines = [
        "# Tiny-world scorers",
        "",
        "Scorers for `model=tiny_pretrained`'s 64 px grey line drawings, selected by `metrics=tiny_world`.",
        "Numbers from them describe the tiny world only, not the paper's CLIP ViT-B/32 and X-CLIP.",
        "",
        "## clip/ (S2V): open_clip `CLIP`, ViT 64 px / patch 8, width 96, 3 layers; text width 32",
        "",
        "Trained contrastively: image-image InfoNCE between a drawing's frame 0 and one of its moved",
        "frames (Otsu-binarised 80% of the time, shifted up to 3 px), plus image-text InfoNCE on captions.",
        "Data: procedural doodles (seeds 0..pool) and data_gen animations of the shipped sketches minus the",
        "8 held-out ones (`flipsketch.tiny_world.HELDOUT_SKETCHES`). Nothing from ../shared/data.",
        "",
        "## xclip/ (T2V): transformers `XCLIPModel`, 64 px / patch 8, hidden 64, 2 layers, MIT 1 layer",
        "",
        "Trained on binarised doodle clips (8 frames after frame 0, sampled evenly as XClipScorer does):",
        "cross-entropy over one caption per motion program (14), phrasing drawn at random per step.",
        "",
        "## Training and held-out quality",
        "",
    ]
    for k in ("clip", "xclip"):
        if k not in q:
            continue
        r = q[k]
        lines += [f"### {k}", "", f"- command: `{r['command']}` (OMP_NUM_THREADS=1, one thread)",
                  f"- steps: {r['steps']}, wall time: {r['seconds'] / 60:.1f} min"]  # fmt: skip
        for name, acc in r.get("s2v_top1", {}).items():
            n = r["sketches"][name]
            lines.append(
                f"- S2V top-1 sketch retrieval on `{name}` ({n} sketches, chance {100 / n:.1f}%): {100 * acc:.1f}%"
            )
        if "t2v_top1" in r:
            lines.append(f"- T2V top-1 motion caption on {r['clips']} doodle clips of unseen seeds "
                         f"(14 programs, chance 7.1%): {100 * r['t2v_top1']:.1f}%")  # fmt: skip
        lines.append("")
    (out / "MODEL_CARD.md").write_text("\n".join(lines))
