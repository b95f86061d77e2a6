"""The README stays a short user's guide and no relative link in README.md or docs/*.md points nowhere.

Links are Markdown links and images (`[text](target)`, `![alt](target)`) and HTML `src=`/`href=`
attributes outside code; URLs with a scheme are not followed (no network). A target is resolved
against the linking file's folder and must exist; a `#anchor` into a Markdown file (or into the same
file) must name one of its headings, slugged as GitHub does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
README_IMAGE_MAX_BYTES = 500_000

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_MD_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_LINK = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _prose_lines(text: str):
    """(line number, line) outside fenced code blocks, with inline code spans blanked."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, _CODE_SPAN.sub("", line)


def github_slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else _HEADING.match(line)
        if m:
            slug = github_slug(m.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            out.add(slug if count == 0 else f"{slug}-{count}")
    out |= set(re.findall(r"""<a\s+(?:name|id)=["']([^"']+)["']""", path.read_text(encoding="utf-8")))
    return out


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for n, line in _prose_lines(path.read_text(encoding="utf-8")):
        found += [(n, m.group(1)) for m in _MD_LINK.finditer(line)]
        found += [(n, m.group(1)) for m in _HTML_LINK.finditer(line)]
    return found


def broken_links(path: Path) -> list[str]:
    """Every relative link of `path` whose file, or whose heading anchor, does not exist."""
    bad = []
    for n, target in links(path):
        if _SCHEME.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{n}: {target}"
        if not dest.exists():
            bad.append(f"{where} (no such file)")
        elif anchor and dest.suffix.lower() == ".md" and anchor.lower() not in anchors(dest):
            bad.append(f"{where} (no heading #{anchor} in {dest.name})")
    return bad


def test_readme_is_a_short_guide():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move details and measurements "
        "into docs/ and link to them"
    )


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_somewhere(path):
    assert broken_links(path) == []


def test_readme_shows_a_picture_of_real_output_that_is_small():
    images = [t for _, t in links(ROOT / "README.md") if re.search(r"\.(gif|png|jpe?g|webp)$", t, re.I)]
    assert images, "the README's first screen shows a picture of the shipped model's output"
    first = (ROOT / images[0]).resolve()
    assert first.is_relative_to(ROOT / "docs" / "img")
    assert first.stat().st_size < README_IMAGE_MAX_BYTES


def test_readme_links_every_docs_page():
    linked = {(ROOT / t.partition("#")[0]).resolve() for _, t in links(ROOT / "README.md")}
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert missing == []


def test_the_checker_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## 7. Knobs (`sampler.*`)\n\n## Dup\n\n## Dup\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Section λ one\n\n"
        "[ok](other.md) [ok](other.md#7-knobs-sampler) [ok](other.md#dup-1) [ok](#section-λ-one)\n"
        "![ok](other.md) [web](https://example.com/nowhere) `[code](missing_in_code.md)`\n"
        "```\n[fenced](missing_in_fence.md)\n```\n"
        "[gone](missing.md) ![gone](img/missing.png) [bad anchor](other.md#no-such) [self](#nope)\n"
        '<img src="missing.gif">\n'
    )
    bad = broken_links(page)
    assert [b.split(": ", 1)[1] for b in bad] == [
        "missing.md (no such file)",
        "img/missing.png (no such file)",
        "other.md#no-such (no heading #no-such in other.md)",
        "#nope (no heading #nope in page.md)",
        "missing.gif (no such file)",
    ]


# Config groups Hydra plugins provide (the `[sweep]` extra), not files under conf/.
PLUGIN_CONFIGS = {("hydra/launcher", "submitit_slurm"), ("hydra/launcher", "submitit_local")}


def readme_code_and_prose() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_make_target_the_readme_names_exists():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-zA-Z0-9_-]+):", makefile, re.M))
    named = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", readme_code_and_prose()))
    assert named and named - targets == set()


def test_every_command_line_the_readme_names_is_installed():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    scripts = set(re.findall(r"^(flipsketch-[a-z]+)\s*=", pyproject, re.M))
    named = set(re.findall(r"\b(flipsketch-[a-z]+)\b", readme_code_and_prose()))
    assert named and named - scripts == set()


def test_every_config_the_readme_names_exists():
    text = readme_code_and_prose()
    groups = {p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*") if p.is_dir()}
    named = set()
    for group, name in re.findall(r"(?<![\w.])([a-z_]+(?:/[a-z_]+)?)=([a-z][a-z0-9_]*)\b", text):
        if group in groups:
            named.add((group, name))
    assert {g for g, _ in named} >= {"experiment", "model", "sampler", "hparams_search", "hydra/launcher"}
    missing = [
        f"{g}={n}"
        for g, n in sorted(named)
        if (g, n) not in PLUGIN_CONFIGS
        and not (ROOT / "conf" / g / f"{n}.yaml").exists()
        # a sampler preset announced in the prose ("is being added") is checked once it exists
        and not (g == "sampler" and n == "official")
    ]
    assert missing == []
