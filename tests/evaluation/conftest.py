"""Fixtures of the evaluation tests: shared QuIC-360 files and one scored run of the samples."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = (REPO / ".." / "shared" / "data" / "quic360_samples").resolve()
QUIC360 = (REPO / ".." / "shared" / "data" / "quic360").resolve()
PREDICTIONS = SAMPLES / "predictions.csv"
SAMPLE_REFS = SAMPLES / "samples.csv"
TRAIN_TSV = QUIC360 / "train.tsv"
TEST_TSV = QUIC360 / "test.tsv"


@pytest.fixture(scope="session")
def shared_files() -> dict[str, Path]:
    files = {
        "predictions": PREDICTIONS,
        "samples": SAMPLE_REFS,
        "train": TRAIN_TSV,
        "test": TEST_TSV,
    }
    for name, path in files.items():
        assert path.is_file(), f"shared data missing: {name} {path}"
    return files


@pytest.fixture(scope="session")
def shared_run_dir(tmp_path_factory, shared_files) -> Path:
    """``panollava score`` on the shared 4 methods × 6 samples (run once per session)."""
    from typer.testing import CliRunner

    from panollava.cli import app

    out = tmp_path_factory.mktemp("score") / "samples_run"
    args = ["score", str(shared_files["predictions"]), "--references", str(shared_files["samples"])]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--bootstrap", "200"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def pycoco_meteor():
    """pycocoevalcap's own METEOR wrapper (fine on small inputs), shared by the tests."""
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = Meteor()
    yield meteor
    del meteor
