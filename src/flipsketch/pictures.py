"""Pictures for eyes: contact sheets of sketch animations (the input sketch, then the frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import atomic_path
from .fonts import drawable, label_font


def contact_sheet(path: Path, blocks: list[tuple[str, list[tuple[str, np.ndarray]]]], scale: int = 2) -> Path:
    """A PNG for eyes: per block (e.g. a sketch) a title line, then one row per label (e.g. a method).

    `blocks`: [(title, [(row label, frames (F, H, W[, 3]) uint8 with the input sketch first), ...]), ...].
    Rows of one sheet may differ in frame count; frames are drawn at `scale` x, nearest neighbour.
    Written atomically.
    """
    from PIL import ImageDraw

    label_w, title_h, pad = 150, 14, 2
    rows = [(t, lab, np.asarray(fr)) for t, rs in blocks for lab, fr in rs]
    if not rows:
        raise ValueError("contact_sheet: nothing to draw")
    side = max(int(fr.shape[1]) for _, _, fr in rows) * scale
    ncol = max(len(fr) for _, _, fr in rows)
    width = label_w + ncol * (side + pad)
    height = sum(title_h + len(rs) * (side + pad) for _, rs in blocks)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font, unicode = label_font()
    y = 0
    for title, rs in blocks:
        draw.text((2, y + 1), drawable(title, unicode), fill=(0, 0, 160), font=font)
        y += title_h
        for label, frames in rs:
            draw.text((2, y + side // 2 - 5), drawable(label, unicode), fill=(0, 0, 0), font=font)
            # PIL, not torchvision's make_grid: rows differ in frame count, a one-tile grid loses its padding
            for k, fr in enumerate(np.asarray(frames)):
                im = Image.fromarray(fr).convert("RGB")
                im = im.resize((side, side), Image.Resampling.NEAREST)
                sheet.paste(im, (label_w + k * (side + pad), y))
                if k == 0:  # the input sketch: framed in blue
                    draw.rectangle([label_w - 1, y - 1, label_w + side, y + side], outline=(0, 0, 200))
            y += side + pad
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
