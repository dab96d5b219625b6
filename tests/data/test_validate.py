"""Row validation: every kind of bad row is reported (library and `panollava data check`)."""

from pathlib import Path

import numpy as np
import pytest
from data_helpers import write_table
from PIL import Image
from typer.testing import CliRunner

from panollava.cli import app
from panollava.data.quic360 import DataError, read_split
from panollava.data.validate import ISSUE_KINDS, ensure_valid, validate_rows

SAMPLES = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "quic360_samples"
).resolve()
runner = CliRunner()


def _jpeg(path: Path, w: int = 128, h: int = 64) -> Path:
    arr = np.linspace(0, 255, w * h * 3).reshape(h, w, 3).astype(np.uint8)
    Image.fromarray(arr).save(path, quality=90)
    return path


@pytest.fixture
def bad_table(tmp_path) -> Path:
    """One good row, then one row per kind of problem (row numbers in the comments)."""
    _jpeg(tmp_path / "good.jpg")
    _jpeg(tmp_path / "square.jpg", 64, 64)
    (tmp_path / "text.jpg").write_text("this is not a jpeg")
    data = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    path = write_table(
        tmp_path / "bad.tsv",
        [
            ["good.jpg", "colors", "red and blue"],  # 1 ok
            ["nowhere.jpg", "colors", "red"],  # 2 missing_image
            ["text.jpg", "colors", "red"],  # 3 unreadable_image (not an image)
            ["cut.jpg", "colors", "red"],  # 4 unreadable_image (truncated)
            ["square.jpg", "colors", "red"],  # 5 aspect
            ["good.jpg", "", "red"],  # 6 empty_query
            ["good.jpg", "shapes", "NaN"],  # 7 empty_reference
            ["", "shapes", "a disc"],  # 8 empty_url
            ["good.jpg", "colors", "red and blue"],  # 9 duplicate of 1
            ["https://example.invalid/p.jpg", "sky", "blue"],  # 10 missing_image (no cache)
        ],
    )
    with path.open("a") as fh:
        fh.write("good.jpg\tonly two fields\n")  # 11 malformed
    return path


EXPECTED = {
    2: "missing_image",
    3: "unreadable_image",
    4: "unreadable_image",
    5: "aspect",
    6: "empty_query",
    7: "empty_reference",
    8: "empty_url",
    9: "duplicate",
    10: "missing_image",
    11: "malformed",
}


def test_every_kind_of_bad_row_is_reported(bad_table):
    report = validate_rows(read_split([bad_table]))
    found = {(i.row, i.kind) for i in report.issues}
    assert found >= set(EXPECTED.items())
    assert all(i.row != 1 for i in report.issues)
    assert not report.ok and report.rows == 11
    assert {i.kind for i in report.issues} == set(ISSUE_KINDS)


def test_allowed_kinds_become_warnings(bad_table):
    report = validate_rows(read_split([bad_table]), allow=["aspect", "duplicate"])
    kinds = {i.kind: i.severity for i in report.issues}
    assert kinds["aspect"] == kinds["duplicate"] == "warning" and kinds["malformed"] == "error"
    with pytest.raises(ValueError, match="unknown issue kind"):
        validate_rows([], allow=["typo"])


def test_header_mode_does_not_decode_but_sees_a_missing_jpeg_end_marker(bad_table):
    report = validate_rows(read_split([bad_table]), images="header")
    rows = {i.row: i.detail for i in report.issues if i.kind == "unreadable_image"}
    assert set(rows) == {3, 4}  # the truncated JPEG has a valid header but no end marker
    assert "no end-of-image marker" in rows[4]


def test_cli_check_reports_each_row_and_fails(bad_table, tmp_path):
    result = runner.invoke(
        app, ["data", "check", str(bad_table), "--report", str(tmp_path / "r.tsv")]
    )
    assert result.exit_code == 1, result.output
    for row, kind in EXPECTED.items():
        assert f"bad.tsv:{row}" in result.output
        assert kind in result.output
    lines = (tmp_path / "r.tsv").read_text().splitlines()[1:]
    assert {int(line.split("\t")[1]) for line in lines} == set(EXPECTED)


def test_cli_check_passes_on_shared_samples():
    result = runner.invoke(app, ["data", "check", str(SAMPLES / "samples.csv")])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_cli_check_uses_image_root(tmp_path):
    _jpeg(tmp_path / "pano.jpg")
    sub = tmp_path / "sub"
    sub.mkdir()
    table = write_table(sub / "t.tsv", [["pano.jpg", "q", "r"]])
    assert runner.invoke(app, ["data", "check", str(table)]).exit_code == 1
    result = runner.invoke(app, ["data", "check", str(table), "--images", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_training_refuses_broken_rows_with_one_message(bad_table):
    rows = read_split([bad_table])
    with pytest.raises(DataError) as err:
        ensure_valid(rows, images="decode")
    message = str(err.value)
    for row in EXPECTED:
        assert f"bad.tsv:{row} " in message
    assert "skip_invalid" in message


def test_skip_invalid_skips_and_lists_the_rows(bad_table, tmp_path):
    rows = read_split([bad_table])
    with pytest.raises(DataError, match="run folder"):
        ensure_valid(rows, images="decode", skip_invalid=True)
    kept = ensure_valid(rows, images="decode", skip_invalid=True, run_dir=tmp_path / "run")
    assert [r.row for r in kept] == [1]
    listed = (tmp_path / "run" / "skipped_rows.tsv").read_text().splitlines()[1:]
    assert {int(line.split("\t")[1]) for line in listed} == set(EXPECTED)


def test_clean_rows_pass_untouched(tmp_path):
    _jpeg(tmp_path / "a.jpg")
    table = write_table(tmp_path / "t.csv", [["a.jpg", "q", "r1"], ["a.jpg", "q", "r2"]])
    rows = read_split([table])
    assert ensure_valid(rows, images="decode") == rows
