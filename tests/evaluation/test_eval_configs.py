"""Every eval config group composes, resolves and instantiates (or fails with one clear line)."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from flipsketch.cli import CONF_DIR, instantiate_checked
from flipsketch.errors import MissingWeightsError, UserError
from flipsketch.evaluation import compose_eval
from flipsketch.evaluation.methods import resolve_methods, variant_method


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _resolved(cfg):
    cfg = compose_eval([*cfg]) if isinstance(cfg, list) else cfg
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("experiment", ["tiny_table1", "tiny_ablation", "paper_table1", "paper_ablation"])
def test_eval_experiments_compose_and_name_known_methods(experiment, tmp_path):
    cfg = compose_eval([f"experiment={experiment}", f"paths.log_dir={tmp_path}"])
    _resolved(cfg)
    known = set(cfg.variants) | set(cfg.baseline)
    assert cfg.methods and set(cfg.methods) <= known
    if experiment.startswith("paper"):
        assert cfg.model.name == "modelscope" and cfg.benchmark.name == "flipsketch_examples"
        assert list(cfg.seeds) == [0, 1, 2] and cfg.metrics.scorer.model_name == "ViT-B-32"
        assert cfg.metrics.scorer.pretrained == "openai"
    else:
        assert cfg.model.name == "tiny" and cfg.metrics.scorer._target_.endswith("ClipScorer.tiny")
        assert len(cfg.benchmark.only) == 2 and len(cfg.seeds) <= 2


@pytest.mark.parametrize("benchmark", _options("benchmark"))
def test_every_benchmark_composes(benchmark):
    cfg = compose_eval([f"benchmark={benchmark}"])
    assert _resolved(cfg)["benchmark"]["name"] == benchmark


def test_every_variant_builds_a_valid_sampler_config():
    cfg = compose_eval([])
    assert set(cfg.variants) == {
        "full",
        "lambda1",
        "no_align",
        "no_composition",
        "cs_only",
        "ct_only",
        "lambda0",
        "official",
    }
    s = {n: variant_method(cfg, n, cfg.variants[n]).sampler for n in cfg.variants}
    assert s["full"].to_dict() == s["full"].from_dict(OmegaConf.to_container(cfg.sampler)).to_dict()
    assert s["no_align"].align is False and s["lambda0"].lambda_ == 0.0 and s["lambda1"].lambda_ == 1.0
    assert not s["no_composition"].compose_spatial and not s["no_composition"].compose_temporal
    assert s["cs_only"].compose_spatial and not s["cs_only"].compose_temporal
    assert s["ct_only"].compose_temporal and not s["ct_only"].compose_spatial
    assert s["official"].faithful.describe() == "official" and s["full"].faithful.describe() == "ours"
    fingerprints = {variant_method(cfg, n, cfg.variants[n]).fingerprint for n in cfg.variants}
    assert len(fingerprints) == len(cfg.variants)  # distinct settings -> distinct output folders


def test_metrics_configs_instantiate_or_say_weights_are_missing():
    tiny = instantiate_checked(compose_eval(["metrics=tiny"]).metrics.scorer)
    assert tiny.backbone.startswith("open_clip:tiny-random")
    try:  # the real ViT-B-32 needs locally cached weights: without them, one clear line
        clip = instantiate_checked(compose_eval(["metrics=clip"]).metrics.scorer)
        assert clip.backbone == "open_clip:ViT-B-32/openai"
    except MissingWeightsError as exc:
        assert "\n" not in str(exc) and "ViT-B-32" in str(exc)
    tiny_x = instantiate_checked(compose_eval(["metrics=tiny"]).metrics.xclip)
    assert tiny_x.backbone == "xclip:tiny-random(seed=0)" and tiny_x.num_frames == 8
    cfg = compose_eval(["metrics=clip"])
    assert cfg.metrics.t2v == "xclip" and cfg.metrics.include_frame0 is False
    assert cfg.metrics.frames == cfg.sampler.num_frames and cfg.metrics.postprocess == "binarize"
    try:  # X-CLIP needs microsoft/xclip-base-patch32 in the HF cache (or a local folder)
        assert instantiate_checked(cfg.metrics.xclip).backbone == "xclip:microsoft/xclip-base-patch32"
    except MissingWeightsError as exc:
        assert "\n" not in str(exc) and "microsoft/xclip-base-patch32" in str(exc)


def test_every_baseline_instantiates_or_says_what_to_set(tmp_path):
    cfg = compose_eval([f"paths.data_dir={tmp_path}", "baseline.svd.path=" + str(tmp_path / "svd")])
    assert set(cfg.baseline) == set(_options("baseline"))
    for name in cfg.baseline:
        try:
            b = instantiate_checked(cfg.baseline[name])
            assert b.label and b.name == name
        except UserError as exc:  # weights / outputs not on this machine
            assert "\n" not in str(exc) and name in ("svd", "dynamicrafter", "live_sketch")
    ok = compose_eval(["methods=[t2v_plain,svd,full]", "baseline.svd.tiny=true"])
    assert [m.kind for m in resolve_methods(ok)] == ["baseline", "baseline", "variant"]


def test_benchmark_roots_resolve_from_the_repository(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # relative roots fall back to the repository root
    from flipsketch.evaluation.benchmark import entries

    cfg = compose_eval(["benchmark.only=[cat,fish]"])
    got = entries(cfg.benchmark)
    assert [e["id"] for e in got] == ["cat", "fish"] and all(Path(e["path"]).is_file() for e in got)


@pytest.mark.parametrize("logger", _options("logger"))
def test_logger_options_compose_and_only_wandb_starts_a_run(logger, tmp_path):
    from flipsketch.evaluation.wandb_log import WandbRun

    cfg = compose_eval([f"logger={logger}", f"paths.output_dir={tmp_path}"])
    _resolved(cfg)
    if logger != "wandb":
        assert WandbRun.start(cfg, tmp_path, "x") is None


def test_the_table_header_names_the_sampler_of_every_row():
    from flipsketch.evaluation.table import sampler_line, summarize

    cfg = compose_eval([])
    methods = [variant_method(cfg, n, cfg.variants[n]) for n in ("full", "official")]
    line = sampler_line(summarize([], methods))
    assert line == (
        "Sampler per row: FlipSketch: ours (every sampler.faithful switch off); "
        "FlipSketch (official loop): official (the authors' loop: every sampler.faithful switch on)\n"
    )
    same = sampler_line(summarize([], methods[:1]))
    assert same == "Sampler: ours (every sampler.faithful switch off) for every FlipSketch row\n"
    one = compose_eval(["sampler.faithful.reference_video=true"])
    row = variant_method(one, "full", one.variants["full"])
    assert "ours + faithful.reference_video" in sampler_line(summarize([], [row]))


def test_make_eval_tiny_scores_the_shipped_trained_model():
    """`make eval-tiny` is the trained tiny_pretrained model (not the random model=tiny, whose
    contact sheets are noise), at the experiment's short schedule."""
    import re
    import shlex

    from flipsketch.cli import compose_config, with_model_sampler

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    recipe = re.search(r"^eval-tiny:.*\n\t(.+)$", makefile, re.M).group(1)
    args = shlex.split(recipe)
    assert args[0].endswith("flipsketch-eval")
    cfg = compose_config("eval", with_model_sampler("eval", args[1:]))
    assert cfg.model.name == "tiny_pretrained" and cfg.sampler.num_inference_steps == 3
