"""``panollava infer`` on a real panorama with tiny stand-ins of every family (offline)."""

import pytest
from typer.testing import CliRunner

from panollava.cli import app


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl", "internvl", "gemma3"])
def test_infer_runs_for_every_family(tmp_path, sample_images, family):
    res = CliRunner().invoke(
        app,
        [
            "infer",
            "--image",
            str(sample_images[2]),
            "--query",
            "what is there",
            "--family",
            family,
            "--model",
            "tiny",
            "--size",
            "56",
            "--max-new-tokens",
            "4",
            "--show-views",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert f'"family": "{family}"' in res.output and '"views": 9' in res.output
    assert (tmp_path / "views.png").exists() and (tmp_path / "views.json").exists()


def test_infer_reports_missing_image(tmp_path):
    res = CliRunner().invoke(
        app, ["infer", "--image", str(tmp_path / "x.jpg"), "--query", "q", "--model", "tiny"]
    )
    assert res.exit_code == 2 and "file not found" in " ".join(res.output.split())


def test_infer_refuses_fp16_for_gemma3_with_exit_2(sample_images):
    """#14.7: fp16 is refused for a bf16-only family before the model loads, as a clear error."""
    args = ["infer", "--image", str(sample_images[2]), "--query", "q", "--family", "gemma3"]
    res = CliRunner().invoke(app, [*args, "--model", "tiny", "--size", "56", "--dtype", "float16"])
    assert res.exit_code == 2, res.output
    assert "bf16-only" in " ".join(res.output.split()) and res.exception is not None
    assert "Traceback" not in res.output


def test_predictor_refuses_fp16_for_a_bf16_only_system():
    """#14.7: eval/serve build a Predictor around a loaded system (run folders): refused there."""
    from panollava.config import PanoConfig
    from panollava.inference import Predictor
    from panollava.models.adapters.families import PrecisionError
    from panollava.models.adapters.loading import load_adapter
    from panollava.models.adapters.schema import PanoAdaptConfig
    from panollava.models.adapters.system import PanoAdaptSystem
    from panollava.views.schema import ViewsConfig

    views = ViewsConfig(tile_size=56)
    loaded = load_adapter("gemma3", views, checkpoint="tiny", tiny_corpus=["q"])
    cfg = PanoConfig(views=views, model=PanoAdaptConfig(family="gemma3", source="tiny"))
    with pytest.raises(PrecisionError, match="bf16-only"):
        Predictor(cfg, PanoAdaptSystem(cfg, loaded), device="cpu", dtype="float16")


@pytest.mark.parametrize("precision", ["16-mixed"])
def test_config_refuses_fp16_training_for_gemma3(precision):
    """#14.7: training refuses fp16 at config validation, before any model is built."""
    from panollava.config import ConfigError, load_config

    overrides = ["model.system=panoadapt", "model.family=gemma3", f"train.precision={precision}"]
    with pytest.raises(ConfigError, match="bf16-only"):
        load_config(None, overrides)
    load_config(None, [*overrides[:2], "train.precision=bf16-mixed"])
