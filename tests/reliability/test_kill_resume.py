"""Killed or failed runs leave folders that the next run resumes from, never poisons."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from panollava.evaluation.generation import EvalItem, PredictionsFileError, run_generation
from panollava.evaluation.tables import read_predictions


def _items() -> list[EvalItem]:
    return [EvalItem(f"img{i}.jpg", f"q{i}") for i in range(4)]


def _answer(batch: list[EvalItem]) -> list[str]:
    return [f"a {it.query}" for it in batch]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_eval_killed_before_its_header_resumes_with_a_header(tmp_path):
    """A kill in the first batch (or a full disk) used to leave a 0-byte predictions.csv: the
    rerun appended rows without a header and scoring failed forever after."""
    out = tmp_path / "predictions.csv"
    out.write_bytes(b"")
    run_generation(_items(), _answer, out, max_batch=2)
    table = read_predictions(out)
    assert sorted(r.query for r in table.rows) == ["q0", "q1", "q2", "q3"]


def test_eval_killed_midway_through_its_header_resumes_with_a_header(tmp_path):
    out = tmp_path / "predictions.csv"
    out.write_bytes(b"url,qu")
    run_generation(_items(), _answer, out, max_batch=2)
    assert [r["query"] for r in _rows(out)] == ["q0", "q1", "q2", "q3"]


def test_header_is_never_half_written_when_the_disk_is_full(tmp_path, monkeypatch):
    """The header is written to a temporary file and renamed: a failed write leaves no file."""
    out = tmp_path / "predictions.csv"

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError, match="No space"):
        run_generation(_items(), _answer, out, max_batch=2)
    monkeypatch.undo()
    assert not out.exists()
    run_generation(_items(), _answer, out, max_batch=2)
    assert len(_rows(out)) == 4


def test_predictions_file_without_its_header_is_refused_by_name(tmp_path):
    """A file poisoned by an older version (rows, no header) is named, not appended to."""
    out = tmp_path / "predictions.csv"
    out.write_text("img0.jpg,q0,a q0\n", encoding="utf-8")
    with pytest.raises(PredictionsFileError, match=r"predictions\.csv.*header"):
        run_generation(_items(), _answer, out, max_batch=2)


def test_truncated_resume_checkpoint_is_named_not_a_torch_traceback(tmp_path):
    from panollava.training.run import CheckpointError, resume_checkpoint

    stage = tmp_path / "vision"
    stage.mkdir()
    assert resume_checkpoint(stage) is None
    (stage / "last.ckpt").write_bytes(b"PK\x03\x04" + b"\x00" * 100)  # a zip cut short
    with pytest.raises(CheckpointError, match=r"vision/last\.ckpt: truncated or corrupt"):
        resume_checkpoint(stage)


@pytest.mark.slow
def test_train_resume_from_a_truncated_last_ckpt_exits_2_naming_it(tmp_path):
    """A kill while Lightning wrote last.ckpt used to make --resume die in torch.load."""
    import json

    from typer.testing import CliRunner

    from panollava.cli import app
    from panollava.data.synth import synthesize

    repo = Path(__file__).resolve().parents[2]
    data = tmp_path / "data"
    synthesize(data, n=6, seed=5, width=256, tokenizer=True)
    run = tmp_path / "run"
    args = [
        "train",
        str(repo / "configs" / "panollava" / "tiny.yaml"),
        f"data.train=[{data / 'train.tsv'}]",
        "data.valid=[]",
        f"model.tokenizer={data / 'tokenizer'}",
        "train.stages.0.max_steps=2",
        "train.stages.0.batch_size=2",
        "train.checkpoint_every_n_steps=1",
        "--run-dir",
        str(run),
        "--stages",
        "vision",
    ]
    assert CliRunner().invoke(app, args).exit_code == 0
    ckpt = run / "vision" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])  # killed mid-write
    state = json.loads((run / "stages.json").read_text())
    state["stages"][0]["status"] = "running"
    (run / "stages.json").write_text(json.dumps(state))
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == 2, result.output
    assert "last.ckpt: truncated or corrupt checkpoint" in result.output
