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
