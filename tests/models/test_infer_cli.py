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
