"""Weight files are data that cannot corrupt a model (issue 25, items 2-3): a LoRA file loads only
LoRA pairs of existing adaptable modules, with shapes and rank checked from the header before any
tensor is read or adapter built, and finite, bounded values."""

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from flipsketch.errors import UserError
from flipsketch.models import lora as L


@pytest.fixture(scope="module")
def good_lora(tmp_path_factory, fresh_tiny):
    """A real LoRA file of the tiny model (random B: a non-zero delta) and its tensors."""
    from safetensors import safe_open

    src = fresh_tiny()
    L.add_lora(src.unet, targets="attn", init=False)
    path = L.save_lora(tmp_path_factory.mktemp("lora") / "good.safetensors", src.unet)
    with safe_open(str(path), framework="pt") as f:
        return path, {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def _write(path, tensors, meta=None):
    save_file(tensors, str(path), metadata=meta)
    return path


def _load_fresh(path, fresh):
    before = {k: v.clone() for k, v in fresh.unet.state_dict().items()}
    try:
        L.load_lora(path, fresh.unet)
    finally:
        after = {k.replace(".base_layer.", "."): v for k, v in fresh.unet.state_dict().items()}
    return before, after


def test_a_good_lora_still_loads(good_lora, fresh_tiny):
    path, _, _ = good_lora
    before, after = _load_fresh(path, fresh_tiny())
    assert all(torch.equal(before[k], after[k]) for k in before)  # base weights untouched
    assert any("lora_" in k for k in after)


def test_a_base_weight_key_is_refused_and_the_layer_is_untouched(tmp_path, good_lora, tiny, fresh_tiny):
    _, tensors, meta = good_lora
    bad = dict(tensors)
    conv = tiny.unet.conv_in.weight
    bad["unet.conv_in.weight"] = torch.zeros_like(conv)
    path = _write(tmp_path / "base_key.safetensors", bad, meta)
    with pytest.raises(UserError, match=r"'unet\.conv_in\.weight' is not a LoRA tensor"):
        L.check_lora_file(path)
    fresh = fresh_tiny()
    with pytest.raises(UserError, match="conv_in"):
        L.load_lora(path, fresh.unet)
    assert fresh.unet.conv_in.weight.abs().sum() > 0  # not zeroed
    assert not any("lora_" in k for k in fresh.unet.state_dict())  # nothing injected either


def test_a_key_naming_no_module_is_refused(tmp_path, good_lora, fresh_tiny):
    _, tensors, _ = good_lora
    bad = {
        "unet.no_such_block.to_q.lora_A.weight": torch.zeros(4, 32),
        "unet.no_such_block.to_q.lora_B.weight": torch.zeros(32, 4),
    }
    path = _write(tmp_path / "ghost.safetensors", bad)
    with pytest.raises(UserError, match="no_such_block.*names no module"):
        L.load_lora(path, fresh_tiny().unet)


def test_a_key_naming_a_non_adaptable_module_is_refused(tmp_path, fresh_tiny):
    unet = fresh_tiny().unet
    name = next(n for n, m in unet.named_modules() if isinstance(m, torch.nn.GroupNorm))
    bad = {f"unet.{name}.lora_A.weight": torch.zeros(2, 4), f"unet.{name}.lora_B.weight": torch.zeros(4, 2)}
    path = _write(tmp_path / "norm.safetensors", bad)
    with pytest.raises(UserError, match="GroupNorm, which LoRA does not adapt"):
        L.load_lora(path, unet)


def test_only_lora_a_tensors_are_refused(tmp_path, good_lora):
    _, tensors, meta = good_lora
    only_a = {k: v for k, v in tensors.items() if ".lora_A." in k}
    path = _write(tmp_path / "only_a.safetensors", only_a, meta)
    with pytest.raises(UserError, match="has no lora_B tensor"):
        L.check_lora_file(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e30])
def test_non_finite_or_absurd_values_are_refused(tmp_path, good_lora, value, fresh_tiny):
    _, tensors, meta = good_lora
    bad = dict(tensors)
    key = sorted(k for k in bad if ".lora_B." in k)[0]
    bad[key] = bad[key].clone()
    bad[key][0, 0] = value
    path = _write(tmp_path / "values.safetensors", bad, meta)
    fresh = fresh_tiny()
    with pytest.raises(UserError, match=r"NaN or infinite|holds a value of 1e\+30"):
        L.load_lora(path, fresh.unet)
    assert not any("lora_" in k for k in fresh.unet.state_dict())


def test_shapes_of_another_model_are_refused_before_any_adapter(tmp_path, good_lora, monkeypatch, fresh_tiny):
    _, tensors, meta = good_lora
    bad = {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) if ".lora_B." in k else v for k, v in tensors.items()}
    path = _write(tmp_path / "shapes.safetensors", bad)
    monkeypatch.setattr(L, "add_lora", lambda *a, **k: pytest.fail("an adapter was built"))
    with pytest.raises(UserError, match="another model"):
        L.load_lora(path, fresh_tiny().unet)


def _sparse_safetensors(path, entries: dict[str, tuple[str, list[int]]]):
    """A safetensors file whose header claims `entries` (dtype, shape) over a sparse (unwritten)
    data block: gigabytes on paper, nothing on disk."""
    sizes = {"F32": 4, "F16": 2}
    header, offset = {}, 0
    for key, (dtype, shape) in entries.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)))
        fh.write(blob)
        fh.truncate(8 + len(blob) + offset)
    return path


def test_a_header_claiming_rank_100000_fails_from_the_header(tmp_path, monkeypatch, fresh_tiny):
    key = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    path = _sparse_safetensors(
        tmp_path / "rank.safetensors",
        {f"{key}.lora_A.weight": ("F32", [100000, 32]), f"{key}.lora_B.weight": ("F32", [32, 100000])},
    )
    monkeypatch.setattr(L, "add_lora", lambda *a, **k: pytest.fail("an adapter was built"))
    with pytest.raises(UserError, match="claims LoRA rank 100000"):
        L.load_lora(path, fresh_tiny().unet)


def test_a_rank_above_the_module_size_is_refused_before_reading_tensors(tmp_path, monkeypatch, fresh_tiny):
    unet = fresh_tiny().unet
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    lin = unet.get_submodule(name)
    r = min(lin.in_features, lin.out_features) + 1
    path = _sparse_safetensors(
        tmp_path / "wide.safetensors",
        {
            f"unet.{name}.lora_A.weight": ("F32", [r, lin.in_features]),
            f"unet.{name}.lora_B.weight": ("F32", [lin.out_features, r]),
        },
    )
    from safetensors import safe_open

    class NoTensors:
        def __init__(self, *a, **k):
            self.inner = safe_open(*a, **k)

        def __enter__(self):
            f = self.inner.__enter__()

            class F:
                metadata, keys, get_slice = f.metadata, f.keys, f.get_slice

                def get_tensor(self, key):
                    pytest.fail("a tensor was read")

            return F()

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

    import safetensors

    monkeypatch.setattr(safetensors, "safe_open", NoTensors)
    with pytest.raises(UserError, match="above the module's size"):
        L.load_lora(path, unet)


def test_a_checkpoint_holding_a_base_weight_is_refused(fresh_tiny):
    from flipsketch.training.checkpoint import _load_into

    comps = fresh_tiny()
    state = {"unet.conv_in.weight": torch.zeros_like(comps.unet.conv_in.weight)}
    targets = ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"]
    with pytest.raises(UserError, match="conv_in"):
        _load_into(comps.unet, "unet", targets, {"rank": 4}, 4, state)
    assert comps.unet.conv_in.weight.abs().sum() > 0
