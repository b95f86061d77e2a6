"""docs/lora_recipe.md's plain diffusers + peft recipe, run exactly as written there, gives the model
the project samples with (UNet and text-encoder outputs within 1e-5) for every shipped model:
`tiny_pretrained`, whose sketch LoRA the project fuses first, and a ModelScope-layout folder."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from flipsketch.models import build_model
from flipsketch.models.lora import add_lora, save_lora
from flipsketch.models.registry import TINY_PRETRAINED_DIR

DOC = Path(__file__).resolve().parents[2] / "docs" / "lora_recipe.md"
TOL = 1e-5


def recipe() -> dict:
    """The doc's first python block, executed as it is (plain diffusers + peft + safetensors)."""
    block = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)[0]
    imports = [line for line in block.splitlines() if line.startswith(("import ", "from "))]
    assert imports and not any("flipsketch" in line for line in imports)  # nothing of this package
    scope: dict = {}
    exec(compile(block, str(DOC), "exec"), scope)  # noqa: S102 - the repository's own doc
    return scope


def _lora_file(tmp_path: Path, model: str, text_encoder: bool, **kw) -> Path:
    """A trained-looking LoRA on `model` (random lora_B, alpha != rank), saved like flipsketch-train."""
    src = build_model(model, **kw)
    add_lora(src.unet, rank=4, alpha=2.0)
    if text_encoder:
        add_lora(src.text_encoder, rank=2, alpha=4.0, targets="text_encoder")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in (src.unet, src.text_encoder):
            for n, p in module.named_parameters():
                if "lora_B" in n:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return save_lora(tmp_path / "lora", src.unet, src.text_encoder if text_encoder else None)


def _max_differences(ours, pipe) -> tuple[float, float]:
    ids = torch.randint(0, 1000, (1, 77), generator=torch.Generator().manual_seed(1))
    x = torch.randn(1, 4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        emb = ours.text_encoder(ids)[0]
        te = (emb - pipe.text_encoder(ids)[0]).abs().max().item()
        unet = (
            ours.unet(x, 10, encoder_hidden_states=emb).sample
            - pipe.unet(x, 10, encoder_hidden_states=emb).sample
        )
    return te, unet.abs().max().item()


def test_recipe_matches_tiny_pretrained_with_a_lora(tmp_path):
    load_flipsketch = recipe()["load_flipsketch"]
    lora = _lora_file(tmp_path, "tiny_pretrained", text_encoder=True)
    ours = build_model("tiny_pretrained", lora=str(lora))
    te, unet = _max_differences(ours, load_flipsketch(str(TINY_PRETRAINED_DIR), lora))
    assert te <= TOL and unet <= TOL
    # the fusing is what makes it match: the same LoRA on the unfused folder is another model
    unfused = recipe()
    pipe = unfused["TextToVideoSDPipeline"].from_pretrained(str(TINY_PRETRAINED_DIR))
    unfused["load_lora"](pipe, lora)
    assert _max_differences(ours, pipe)[1] > 100 * TOL


def test_recipe_matches_the_shipped_model_alone():
    te, unet = _max_differences(
        build_model("tiny_pretrained"), recipe()["load_flipsketch"](str(TINY_PRETRAINED_DIR))
    )
    assert te <= TOL and unet <= TOL


def test_recipe_matches_a_modelscope_folder_with_a_lora(tiny, tmp_path):
    """The paper's models load from a diffusers folder with no sketch LoRA (model=modelscope)."""
    from flipsketch.models.loaders import save_pipeline_folder

    folder = save_pipeline_folder(tiny, tmp_path / "modelscope_layout")
    lora = _lora_file(tmp_path, "modelscope", True, path=str(folder), resolution=64)
    ours = build_model("modelscope", path=str(folder), resolution=64, lora=str(lora))
    te, unet = _max_differences(ours, recipe()["load_flipsketch"](str(folder), lora))
    assert te <= TOL and unet <= TOL
