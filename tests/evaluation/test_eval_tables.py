"""Reading prediction/reference tables and building grouped / per-row samples (no Java)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from panollava.evaluation.samples import build_sample_sets
from panollava.evaluation.tables import TableError, read_predictions, read_references


def _write(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def refs_tsv(tmp_path) -> Path:
    rows = [
        ["a.jpg", "cars", "A red car is parked."],
        ["a.jpg", "cars", "There is one red car."],
        ["a.jpg", "people", "Two people walk."],
        ["b.jpg", "cars", 'No cars, only "bikes"\twith tabs.'],
    ]
    return _write(tmp_path / "refs.tsv", ["url", "query", "annotation"], rows, "\t")


def test_shared_files_parse(shared_files):
    refs = read_references(shared_files["samples"])
    preds = read_predictions(shared_files["predictions"])
    assert len(refs.rows) == 6 and refs.rows[0].url == "img_01.jpg"
    assert preds.layout == "id"
    assert preds.runs == ["Resize", "Native", "DenseCL", "VICReg-pw"]
    test = read_references(shared_files["test"])
    assert len(test.rows) == 6246  # SYSTEM.md §7: 6,246 raw test rows
    assert len({(r.url, r.query) for r in test.rows}) == 1211


def test_aliases_and_quoting(tmp_path):
    path = _write(
        tmp_path / "r.csv",
        ["URL", "instruction", "response"],
        [["x.jpg", "trees", 'He said "tall, green trees".']],
    )
    refs = read_references(path)
    assert refs.rows[0].query == "trees"
    assert refs.rows[0].reference == 'He said "tall, green trees".'


def test_grouped_and_per_row_samples(tmp_path, refs_tsv):
    preds = _write(
        tmp_path / "p.csv",
        ["url", "query", "prediction"],
        [["a.jpg", "cars", "a red car"], ["a.jpg", "people", ""], ["b.jpg", "cars", "bikes"]],
    )
    table, refs = read_predictions(preds, default_run="m"), read_references(refs_tsv)
    grouped = build_sample_sets(table, refs, protocol="grouped")["m"]
    assert grouped.sample_ids == ["a.jpg | cars", "a.jpg | people", "b.jpg | cars"]
    assert grouped.references[0] == ["A red car is parked.", "There is one red car."]
    assert grouped.counts["empty_predictions"] == 1  # kept and scored as empty, not dropped
    per_row = build_sample_sets(table, refs, protocol="per_row")["m"]
    assert len(per_row) == 4
    assert per_row.sample_ids[:2] == ["a.jpg | cars | #1", "a.jpg | cars | #2"]
    assert per_row.predictions[:2] == ["a red car", "a red car"]
    assert all(len(r) == 1 for r in per_row.references)
    assert per_row.references[3] == ['No cars, only "bikes"\twith tabs.']


def test_unknown_key_is_an_error_listing_it(tmp_path, refs_tsv):
    preds = _write(
        tmp_path / "p.csv",
        ["url", "query", "prediction"],
        [["a.jpg", "cars", "x"], ["a.jpg", "people", "y"], ["c.jpg", "trees", "w"]],
    )
    with pytest.raises(TableError, match=r"c\.jpg \| trees") as err:
        build_sample_sets(read_predictions(preds), read_references(refs_tsv))
    assert "p.csv" in str(err.value) and "refs.tsv" in str(err.value)


def test_missing_predictions_need_allow_missing(tmp_path, refs_tsv):
    preds = _write(tmp_path / "p.csv", ["url", "query", "prediction"], [["a.jpg", "cars", "x"]])
    with pytest.raises(TableError, match="--allow-missing"):
        build_sample_sets(read_predictions(preds), read_references(refs_tsv))
    sets = build_sample_sets(read_predictions(preds), read_references(refs_tsv), allow_missing=True)
    run = next(iter(sets.values()))
    assert len(run) == 1 and run.counts["missing"] == 2


def test_conflicting_predictions_for_one_pair(tmp_path, refs_tsv):
    preds = _write(
        tmp_path / "p.csv",
        ["url", "query", "prediction"],
        [["a.jpg", "cars", "x"], ["a.jpg", "cars", "y"]],
    )
    with pytest.raises(TableError, match="rows 1 and 2"):
        build_sample_sets(read_predictions(preds), read_references(refs_tsv), allow_missing=True)


def test_id_layout_joins_by_row_number(tmp_path, refs_tsv):
    preds = _write(
        tmp_path / "p.csv",
        ["id", "method", "prediction"],
        [["1", "A", "car one"], ["2", "A", "car two"], ["4", "A", "bikes"], ["3", "A", "walk"]],
    )
    table, refs = read_predictions(preds), read_references(refs_tsv)
    per_row = build_sample_sets(table, refs, protocol="per_row")["A"]
    assert per_row.predictions == ["car one", "car two", "walk", "bikes"]  # reference order
    with pytest.raises(TableError, match="different predictions"):
        build_sample_sets(table, refs, protocol="grouped")  # ids 1, 2 share a pair
    with pytest.raises(TableError, match="--references"):
        build_sample_sets(table, None)
    bad = _write(tmp_path / "bad.csv", ["id", "prediction"], [["9", "x"]])
    with pytest.raises(TableError, match="id 9"):
        build_sample_sets(read_predictions(bad), refs)


def test_inline_references(tmp_path):
    preds = _write(
        tmp_path / "p.csv",
        ["url", "query", "prediction", "reference"],
        [["a.jpg", "q", "pred", "ref one"], ["a.jpg", "q", "pred", "ref two"]],
    )
    grouped = next(iter(build_sample_sets(read_predictions(preds)).values()))
    assert grouped.references == [["ref one", "ref two"]]
    per_row = next(iter(build_sample_sets(read_predictions(preds), protocol="per_row").values()))
    assert per_row.references == [["ref one"], ["ref two"]]


@pytest.mark.parametrize(
    ("header", "rows", "match"),
    [
        (["url", "query", "annotation"], [["a.jpg", "q", ""]], r"row\(s\) 1"),
        (["url", "annotation"], [["a.jpg", "x"]], "no query column"),
        (["url", "query", "annotation", "reference"], [["a", "q", "x", "y"]], "ambiguous"),
    ],
)
def test_bad_reference_files(tmp_path, header, rows, match):
    path = _write(tmp_path / "r.csv", header, rows)
    with pytest.raises(TableError, match=match) as err:
        read_references(path)
    assert "r.csv" in str(err.value)


def test_ragged_row_names_line(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("url\tquery\tannotation\na.jpg\tq\tok\nb.jpg\tq\n", encoding="utf-8")
    with pytest.raises(TableError, match=r"row 2 \(line 3\) has 2 fields"):
        read_references(path)
