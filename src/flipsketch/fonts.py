"""The label font of the pictures drawn with PIL (contact sheets): a TrueType font with Greek letters
when the system has one. Foundation layer: PIL only. (The sweep plots are drawn with matplotlib, in
its own DejaVu Sans.)"""

from __future__ import annotations

_FONT_FILES = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf")  # have Greek letters (the labels say λ)


def label_font(size: int = 11):
    """(font, unicode): a TrueType font with Greek letters when the system has one, else PIL's default."""
    from PIL import ImageFont

    for name in _FONT_FILES:
        try:
            return ImageFont.truetype(name, size), True
        except OSError:
            continue
    return ImageFont.load_default(size=size), False


def drawable(text: str, unicode: bool) -> str:
    """The text as the font can draw it: without a Unicode font, λ is spelt 'lambda', τ 'tau'."""
    if unicode:
        return text
    for a, b in (("λ", "lambda"), ("τ", "tau"), ("±", "+-"), ("↑", ""), ("↓", "")):
        text = text.replace(a, b)
    return text.encode("ascii", "replace").decode()
