"""Write the shipped sketch set: data_gen/sketches/*.svg + captions.json.

Simple hand-authored line drawings on a 256x256 canvas, a handful of stroked paths each.
Regenerate with `python -m data_gen.make_sketches` (the committed SVGs are its output).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

OUT = Path(__file__).resolve().parent / "sketches"


def circle(cx: float, cy: float, r: float) -> str:
    return f"M {cx - r:g} {cy:g} a {r:g} {r:g} 0 1 0 {2 * r:g} 0 a {r:g} {r:g} 0 1 0 {-2 * r:g} 0"


def polar(cx: float, cy: float, r: float, deg: float) -> tuple[float, float]:
    a = math.radians(deg)
    return round(cx + r * math.cos(a), 1), round(cy + r * math.sin(a), 1)


def petals(cx: float, cy: float, r0: float, r1: float, n: int) -> list[str]:
    out = []
    for k in range(n):
        a = 360 / n * k - 90
        p0, p3 = polar(cx, cy, r0, a - 22), polar(cx, cy, r0, a + 22)
        c1, c2 = polar(cx, cy, r1, a - 30), polar(cx, cy, r1, a + 30)
        out.append(f"M {p0[0]} {p0[1]} C {c1[0]} {c1[1]} {c2[0]} {c2[1]} {p3[0]} {p3[1]}")
    return out


def star(cx: float, cy: float, r_out: float, r_in: float, n: int = 5) -> str:
    pts = [polar(cx, cy, r_out if k % 2 == 0 else r_in, -90 + 180 / n * k) for k in range(2 * n)]
    return "M " + " L ".join(f"{x} {y}" for x, y in pts) + " Z"


def rays(cx: float, cy: float, r0: float, r1: float, n: int) -> list[str]:
    out = []
    for k in range(n):
        (x0, y0), (x1, y1) = polar(cx, cy, r0, 360 / n * k), polar(cx, cy, r1, 360 / n * k)
        out.append(f"M {x0} {y0} L {x1} {y1}")
    return out


SKETCHES: dict[str, tuple[str, list[str]]] = {
    "cat": ("a cat jumping playfully", [
        circle(128, 90, 32),
        "M 102 72 L 100 44 L 120 60", "M 136 60 L 156 44 L 154 72",
        circle(116, 86, 3), circle(140, 86, 3),
        "M 124 98 L 128 102 L 132 98 M 128 102 Q 128 108 122 110 M 128 102 Q 128 108 134 110",
        "M 110 100 L 88 96 M 110 104 L 88 106 M 146 100 L 168 96 M 146 104 L 168 106",
        "M 108 118 C 88 140 84 190 96 206 L 160 206 C 172 190 168 140 148 118",
        "M 116 206 L 116 170 M 140 206 L 140 170",
        "M 160 200 C 196 200 204 170 190 150",
    ]),
    "fish": ("a fish swimming in the water", [
        "M 60 128 C 90 90 150 90 180 128 C 150 166 90 166 60 128 Z",
        "M 180 128 L 210 100 L 204 128 L 210 156 Z",
        circle(84, 122, 4),
        "M 100 108 Q 110 128 100 148",
        "M 124 98 Q 136 80 150 102",
    ]),
    "bird": ("a bird flying across the sky", [
        "M 80 140 C 100 120 150 120 170 140 C 150 160 100 160 80 140 Z",
        circle(72, 128, 14),
        "M 59 124 L 44 130 L 60 134",
        "M 110 132 C 112 96 136 72 160 64 C 150 96 140 120 140 134",
        "M 170 140 L 200 128 L 196 150 Z",
        circle(68, 124, 2),
    ]),
    "flower": ("a flower swaying in the breeze", [
        "M 128 236 C 124 200 134 170 128 114",
        "M 127 200 C 104 192 96 176 100 164 C 116 170 126 182 127 200",
        "M 129 184 C 150 176 160 162 158 150 C 142 154 132 166 129 184",
        circle(128, 100, 14),
        *petals(128, 100, 15, 62, 6),
    ]),
    "tree": ("a tree swaying in the wind", [
        "M 116 236 L 118 160 M 140 236 L 138 160",
        "M 118 170 L 100 150 M 138 172 L 158 150",
        "M 90 160 C 60 150 60 110 86 100 C 84 70 120 56 138 74 C 160 56 196 74 188 104 "
        "C 210 118 200 156 170 160 Z",
        "M 80 236 L 176 236",
    ]),
    "car": ("a car driving down the road", [
        "M 48 160 L 48 136 L 84 132 L 104 106 L 164 106 L 188 132 L 212 138 L 212 160 Z",
        "M 110 112 L 96 130 L 178 130 L 160 112 Z",
        "M 136 112 L 136 130",
        circle(86, 162, 16), circle(176, 162, 16),
        circle(86, 162, 4), circle(176, 162, 4),
    ]),
    "boat": ("a sailboat floating on the waves", [
        "M 60 170 L 196 170 L 176 196 L 80 196 Z",
        "M 128 170 L 128 60",
        "M 132 64 L 132 160 L 186 160 Z",
        "M 124 76 L 124 160 L 80 160 Z",
        "M 40 212 Q 60 202 80 212 T 120 212 T 160 212 T 200 212 T 220 208",
    ]),
    "person": ("a person walking forward", [
        circle(128, 60, 16),
        "M 128 76 L 128 150",
        "M 128 96 L 100 130 M 128 96 L 156 126",
        "M 128 150 L 106 210 M 128 150 L 150 210",
        "M 106 210 L 94 212 M 150 210 L 162 212",
    ]),
    "house": ("a cartoon house bouncing up and down", [
        "M 72 120 L 72 210 L 184 210 L 184 120",
        "M 60 130 L 128 64 L 196 130",
        "M 116 210 L 116 166 L 140 166 L 140 210",
        "M 150 140 h 22 v 20 h -22 Z", "M 84 140 h 22 v 20 h -22 Z",
        "M 160 92 L 160 70 L 174 70 L 174 106",
    ]),
    "rocket": ("a rocket launching into the sky", [
        "M 128 40 C 150 60 156 100 152 170 L 104 170 C 100 100 106 60 128 40 Z",
        circle(128, 100, 12),
        "M 104 140 L 82 178 L 104 170", "M 152 140 L 174 178 L 152 170",
        "M 112 172 Q 118 200 128 214 Q 138 200 144 172",
    ]),
    "butterfly": ("a butterfly flapping its wings", [
        "M 128 80 C 122 110 122 150 128 180 C 134 150 134 110 128 80",
        "M 126 100 C 100 50 48 60 60 110 C 70 136 110 130 126 120",
        "M 130 100 C 156 50 208 60 196 110 C 186 136 146 130 130 120",
        "M 126 130 C 96 140 76 170 96 186 C 112 196 124 164 127 146",
        "M 130 130 C 160 140 180 170 160 186 C 144 196 132 164 129 146",
        "M 126 84 Q 116 60 104 56 M 130 84 Q 140 60 152 56",
    ]),
    "snake": ("a snake slithering along the ground", [
        "M 36 168 C 66 118 98 120 118 150 C 138 180 170 182 190 140",
        "M 44 174 C 72 134 96 136 112 160 C 132 192 176 196 198 148",
        "M 190 140 C 196 120 216 120 220 134 C 222 146 210 154 198 148",
        "M 220 136 L 232 134 M 226 135 L 232 140",
        circle(208, 132, 2),
    ]),
    "star": ("a star spinning in the night sky", [
        star(128, 128, 72, 30),
        star(128, 128, 40, 17),
    ]),
    "sun": ("the sun spinning and shining", [
        circle(128, 128, 36),
        *rays(128, 128, 48, 76, 8),
        "M 114 136 Q 128 148 142 136",
        circle(116, 118, 3), circle(140, 118, 3),
    ]),
    "leaf": ("a leaf waving in the wind", [
        "M 60 190 C 70 110 140 60 200 60 C 196 130 140 190 60 190 Z",
        "M 60 190 C 110 150 150 110 196 64",
        "M 100 160 L 96 130 M 100 160 L 130 166 M 140 120 L 138 92 M 140 120 L 168 124",
        "M 60 190 L 44 206",
    ]),
    "umbrella": ("an umbrella opening in the rain", [
        "M 48 120 C 56 70 200 70 208 120",
        "M 48 120 Q 68 108 88 120 T 128 120 T 168 120 T 208 120",
        "M 128 82 L 128 196 Q 128 212 114 212 Q 104 212 104 202",
        "M 128 82 L 128 68",
        "M 88 120 Q 96 90 128 82 M 168 120 Q 160 90 128 82",
    ]),
    "kite": ("a kite drifting in the wind", [
        "M 128 40 L 170 100 L 128 170 L 86 100 Z",
        "M 128 40 L 128 170 M 86 100 L 170 100",
        "M 128 170 C 110 186 146 200 128 214 C 118 222 128 230 120 236",
        "M 120 188 L 134 182 L 134 194 Z", "M 118 214 L 132 208 L 132 220 Z",
    ]),
    "balloon": ("a balloon floating up in the air", [
        "M 128 50 C 90 50 80 100 100 130 C 110 146 122 156 128 158 C 134 156 146 146 156 130 "
        "C 176 100 166 50 128 50 Z",
        "M 122 164 L 128 158 L 134 164 Z",
        "M 128 164 C 118 184 138 200 126 226",
        "M 108 80 Q 110 68 120 64",
    ]),
    "dog": ("a dog running happily", [
        "M 70 120 C 90 110 150 110 170 120 C 176 140 170 150 160 150 L 80 150 C 70 148 66 136 70 120",
        circle(186, 102, 17),
        "M 202 100 L 216 106 L 201 112",
        "M 176 90 C 166 96 166 112 172 118",
        "M 84 150 L 80 196 M 98 150 L 100 196 M 146 150 L 142 196 M 160 150 L 164 196",
        "M 70 122 C 56 110 52 96 58 86",
        circle(192, 96, 2),
    ]),
    "horse": ("a horse galloping across a field", [
        "M 64 110 C 90 96 150 96 170 104 C 180 120 176 140 164 146 L 80 146 C 66 142 58 126 64 110 Z",
        "M 160 104 C 168 80 176 62 186 50 L 212 70 C 214 78 206 82 198 78 L 186 76 "
        "C 182 90 180 104 176 118",
        "M 168 80 Q 172 64 186 50",
        "M 78 146 L 72 206 M 94 146 L 98 206 M 150 146 L 144 206 M 164 146 L 170 206",
        "M 64 112 C 44 120 40 146 46 164",
    ]),
    "flag": ("a flag waving in the wind", [
        "M 70 40 L 70 230",
        "M 70 50 C 110 36 140 70 190 52 L 190 120 C 140 138 110 104 70 118",
        circle(70, 36, 4),
    ]),
    "seedling": ("a seedling growing from the soil", [
        "M 60 220 L 196 220",
        "M 128 220 C 126 190 132 160 128 130",
        "M 128 150 C 104 150 92 132 96 116 C 116 118 128 132 128 150",
        "M 128 140 C 150 136 164 118 160 100 C 140 104 128 120 128 140",
    ]),
    "jellyfish": ("a jellyfish drifting in the ocean", [
        "M 80 120 C 80 60 176 60 176 120",
        "M 80 120 Q 92 112 104 120 T 128 120 T 152 120 T 176 120",
        "M 96 122 C 90 150 104 170 96 200",
        "M 118 122 C 112 156 126 176 118 214",
        "M 138 122 C 144 156 130 176 138 214",
        "M 160 122 C 166 150 152 170 160 200",
    ]),
    "frog": ("a frog hopping forward", [
        "M 88 180 C 70 150 90 110 128 110 C 166 110 186 150 168 180 Z",
        circle(106, 106, 12), circle(150, 106, 12),
        circle(106, 106, 4), circle(150, 106, 4),
        "M 108 140 Q 128 154 148 140",
        "M 88 176 C 60 180 56 200 80 204 M 168 176 C 196 180 200 200 176 204",
    ]),
    "dancer": ("a girl dancing happily", [
        circle(128, 56, 14),
        "M 128 70 L 128 130",
        "M 128 88 L 100 60 M 128 88 L 160 70",
        "M 128 120 L 104 150 L 152 150 Z",
        "M 120 150 L 110 206 M 136 150 L 154 196",
    ]),
}  # fmt: skip


def svg_document(paths: list[str]) -> str:
    body = "\n".join(
        f'  <path d="{d}" fill="none" stroke="black" stroke-width="3" '
        'stroke-linecap="round" stroke-linejoin="round"/>'
        for d in paths
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">\n'
        f"{body}\n</svg>\n"
    )


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, (_, paths) in SKETCHES.items():
        (OUT / f"{name}.svg").write_text(svg_document(paths))
    captions = {name: caption for name, (caption, _) in SKETCHES.items()}
    (OUT / "captions.json").write_text(json.dumps(captions, indent=1) + "\n")
    print(f"wrote {len(SKETCHES)} sketches to {OUT}")


if __name__ == "__main__":
    main()
