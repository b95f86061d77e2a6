"""data_gen in shards (a SLURM array over sketch shards): disjoint clips, one merged metadata.jsonl."""

from __future__ import annotations

import json

import pytest

from data_gen.build import GenConfig, generate
from data_gen.settings import gen_config
from flipsketch.errors import UserError

from .test_data_gen_build import SMALL, sketches  # noqa: F401 - the fixture


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_shards_then_the_merge_equal_one_run(sketches, tmp_path):  # noqa: F811
    one = generate(GenConfig(out=tmp_path / "one", sketches=(sketches,), workers=1, seed=3, **SMALL))
    out = tmp_path / "sharded"
    reports = [
        generate(
            GenConfig(out=out, sketches=(sketches,), workers=1, seed=3, shard_index=k, shard_count=3, **SMALL)
        )
        for k in range(3)
    ]
    assert not (out / "metadata.jsonl").exists()  # a shard writes only its own rows
    ids = [{r["id"] for r in _rows(out / f"metadata.shard-{k}-of-3.jsonl")} for k in range(3)]
    assert sum(map(len, ids)) == len(set().union(*ids)) == one["clips"]  # disjoint, together every clip
    assert [r["shard"] for r in reports] == [{"index": k, "count": 3} for k in range(3)]
    assert all(r["written"] == len(i) for r, i in zip(reports, ids, strict=True))

    merged = generate(GenConfig(out=out, sketches=(sketches,), workers=1, seed=3, **SMALL))
    assert merged["written"] == 0 and merged["existing"] == one["clips"]  # the merge renders nothing
    want = [{k: v for k, v in r.items()} for r in _rows(tmp_path / "one" / "metadata.jsonl")]
    assert _rows(out / "metadata.jsonl") == want  # the one metadata.jsonl, in the same stable order
    for r in want:
        assert (out / r["clip"]).read_bytes() == (tmp_path / "one" / r["clip"]).read_bytes()


def test_shard_settings_are_checked(tmp_path):
    with pytest.raises(UserError, match=r"shard_index must be in \[0, shard_count=2\), got 2"):
        generate(GenConfig(out=tmp_path / "o", shard_index=2, shard_count=2, **SMALL))
    cfg = gen_config({"out": str(tmp_path / "o"), "shard_index": 1, "shard_count": 4})
    assert (cfg.shard_index, cfg.shard_count) == (1, 4)
    with pytest.raises(UserError, match="shard_count"):
        gen_config({"out": str(tmp_path / "o"), "shard_count": "many"})
