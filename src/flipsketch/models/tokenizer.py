"""A real CLIP BPE tokenizer built offline from the vocabulary that open_clip ships.

ModelScope's tokenizer is OpenAI's CLIP BPE (49408 tokens). open_clip bundles the same merges
file (`bpe_simple_vocab_16e6.txt.gz`); we convert it into `vocab.json` + `merges.txt` content for
`transformers.CLIPTokenizer`, which then produces identical ids, with no network.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path


def _bytes_to_unicode() -> dict[int, str]:
    """The reversible byte -> printable-unicode table used by byte-level BPE."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def bundled_bpe_path() -> Path:
    import open_clip

    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():  # pragma: no cover - depends on the installed wheel
        raise FileNotFoundError(f"open_clip's BPE vocabulary is missing: {path}")
    return path


@functools.lru_cache(maxsize=1)
def clip_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Return (vocab, merges) exactly as OpenAI CLIP's tokenizer defines them."""
    lines = gzip.open(bundled_bpe_path(), "rt", encoding="utf-8").read().split("\n")
    merge_lines = lines[1 : 49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in merge_lines]
    tokens = list(_bytes_to_unicode().values())
    tokens += [t + "</w>" for t in tokens]
    tokens += ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(tokens)}, merges  # type: ignore[return-value]


def build_clip_tokenizer(model_max_length: int = 77):
    """A `CLIPTokenizer` with the real CLIP vocabulary, built without any download."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges()
    tok = CLIPTokenizer(
        vocab=dict(vocab),
        merges=[tuple(m) for m in merges],
        model_max_length=model_max_length,
        pad_token="<|endoftext|>",
    )
    if len(tok) != 49408:  # guards against a silently ignored vocabulary argument
        raise RuntimeError(f"offline CLIP tokenizer has {len(tok)} tokens, expected 49408")
    return tok


def save_tokenizer(tok, folder: str | Path) -> Path:
    """`tok.save_pretrained(folder)` plus `vocab.json` and `merges.txt` beside `tokenizer.json`.

    transformers 5 writes only tokenizer.json, which transformers 4.x cannot load as CLIPTokenizer;
    the two classic files make the folder loadable by both (and by diffusers on either).
    """
    import json

    out = Path(folder)
    tok.save_pretrained(out)
    backend = getattr(tok, "backend_tokenizer", None) or getattr(tok, "_tokenizer", None)
    if backend is None:  # a slow tokenizer already wrote its own files
        return out
    model = json.loads(backend.to_str())["model"]
    if model.get("type") != "BPE":
        return out
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    vocab = dict(sorted(tok.get_vocab().items(), key=lambda kv: kv[1]))  # id order: same bytes every run
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return out
