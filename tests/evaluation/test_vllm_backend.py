"""The optional vLLM backend refuses, with the reason, what it cannot run faithfully."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from panollava.cli import app
from panollava.config import load_config
from panollava.evaluation.vllm_backend import VLLMUnavailableError, check_vllm_supported

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("recipe", "overrides", "reason"),
    [
        ("panollava/tiny.yaml", [], "custom architecture"),
        ("panoadapt_tiny/qwen2_5_vl_tiny.yaml", ["model.panorope=true"], "PanoRoPE"),
        (
            "panoadapt_tiny/qwen2_5_vl_tiny.yaml",
            ["model.panorope=false", "views.strategy=native", "train.stages.0.overlap_weight=0"],
            "native",
        ),
    ],
)
def test_unsupported_runs_are_refused(recipe, overrides, reason):
    cfg = load_config(REPO / "configs" / recipe, overrides)
    with pytest.raises(VLLMUnavailableError, match=reason):
        check_vllm_supported(cfg)


def test_supported_config_passes():
    cfg = load_config(
        REPO / "configs" / "panoadapt_tiny" / "qwen2_5_vl_tiny.yaml", ["model.panorope=false"]
    )
    check_vllm_supported(cfg)  # a multi-view PanoAdapt run without PanoRoPE is servable


@pytest.mark.e2e
def test_eval_cli_names_the_missing_vllm(panoadapt_run):
    try:
        import vllm  # noqa: F401

        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    base = ["eval", str(panoadapt_run / "config.yaml"), "--run", str(panoadapt_run)]
    res = CliRunner().invoke(app, [*base, "--backend", "vllm"])  # the run uses PanoRoPE
    assert res.exit_code == 2 and "PanoRoPE" in res.output
    short = ["eval", "--run", str(panoadapt_run)]  # the run's config + a lone override
    res = CliRunner().invoke(app, [*short, "--backend", "vllm", "model.panorope=false"])
    assert res.exit_code == 2 and "pip install vllm" in " ".join(res.output.split())
