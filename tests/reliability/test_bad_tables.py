"""Broken annotation/prediction tables: every command refuses them naming file and line."""

from __future__ import annotations

import codecs
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from panollava.cli import app
from panollava.data.quic360 import MAX_LINE_CHARS, DataError, read_annotations, read_split
from panollava.data.synth import synthesize
from panollava.evaluation.tables import TableError, read_predictions, read_references

HEADER = "url\tquery\tannotation\n"
ROWS = "".join(f"img{i}.jpg\tWhat is here?\tcaption {i}\n" for i in range(5))


def _write(tmp_path: Path, text: str | bytes, name: str = "t.tsv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_stray_quote_does_not_swallow_the_following_rows(tmp_path):
    """One unterminated `"` used to turn 5 rows into 3 ("ok: 3 rows") and train on that."""
    lines = ROWS.splitlines(keepends=True)
    lines[1] = 'img1.jpg\tWhat is here?\t"caption 1\n'
    path = _write(tmp_path, HEADER + "".join(lines))
    with pytest.raises(DataError, match=r"line 3.*unterminated quote"):
        read_split([path])
    result = CliRunner().invoke(app, ["data", "check", str(path), "--mode", "header"])
    assert result.exit_code == 2 and "line 3" in result.output, result.output


def test_stray_quote_in_a_references_file_is_refused_by_score_tables(tmp_path):
    path = _write(tmp_path, HEADER + '"img0.jpg\tq\tc\n' + ROWS)
    with pytest.raises(TableError, match="line 2"):
        read_references(path)


def test_quoted_multiline_caption_is_still_one_valid_field(tmp_path):
    path = _write(tmp_path, HEADER + 'a.jpg\tq\t"two\nlines"\n' + ROWS)
    rows = read_split([path])
    assert len(rows) == 6 and rows[0].reference == "two\nlines"


@pytest.mark.parametrize(("encoding", "hint"), [("latin-1", "latin1"), ("utf-16-le", "utf-16le")])
def test_non_utf8_table_is_refused_naming_the_file_and_the_conversion(tmp_path, encoding, hint):
    path = _write(tmp_path, (HEADER + "café.jpg\tq\tune scène\n").encode(encoding))
    for read in (read_split, read_references):
        with pytest.raises(DataError, match=rf"{path.name}.*iconv -f {hint}"):
            read([path]) if read is read_split else read(path)


def test_utf8_bom_and_utf16_with_bom_tables_are_read(tmp_path):
    text = HEADER + "café.jpg\tq\tune scène\n"
    for name, data in (
        ("bom8.tsv", codecs.BOM_UTF8 + text.encode("utf-8")),
        ("bom16.tsv", text.encode("utf-16")),
    ):
        rows = read_split([_write(tmp_path, data, name)])
        assert [(r.url, r.reference) for r in rows] == [("café.jpg", "une scène")]


def test_field_over_128_kib_is_a_clear_error_not_a_csv_traceback(tmp_path):
    path = _write(tmp_path, HEADER + 'a.jpg\tq\t"' + "x" * 200_000 + '"\n' + ROWS)
    with pytest.raises(DataError, match=r"line 2.*field larger than field limit"):
        read_split([path])


def test_huge_line_fails_early_without_reading_it_into_memory(tmp_path):
    """A 1 GiB line used to cost 2.7-3.7 GB before failing; the reader stops at 1 MiB."""
    path = tmp_path / "huge.tsv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER + "a.jpg\tq\t")
        chunk = "y" * (1 << 20)
        for _ in range(32):  # 32 MiB on one line (the test stands for 1 GiB)
            fh.write(chunk)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=rf"line 2 is longer than {MAX_LINE_CHARS:,}"):
            read_split([path])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MAX_LINE_CHARS  # bytes: a few copies of one bounded line, not 32 MiB


def test_header_only_table_is_a_clear_error(tmp_path):
    """A header-only train table used to reach training and die with StopIteration."""
    path = _write(tmp_path, HEADER)
    with pytest.raises(DataError, match="no data rows below the header"):
        read_annotations(path)


def test_score_and_baseline_accept_the_column_aliases_train_accepts(tmp_path):
    """`image`/`caption` work in train; score/baseline used to refuse them."""
    refs = _write(tmp_path, "image,instruction,caption\na.jpg,q,a cat\nb.jpg,q,a dog\n", "r.csv")
    table = read_references(refs)
    assert [(r.url, r.reference) for r in table.rows] == [("a.jpg", "a cat"), ("b.jpg", "a dog")]
    preds = _write(tmp_path, "image,query,prediction\na.jpg,q,a cat\n", "p.csv")
    assert read_predictions(preds).rows[0].url == "a.jpg"


@pytest.mark.slow
def test_train_on_a_header_only_table_exits_2_naming_the_file(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    synthesize(tmp_path / "synth", n=3, seed=0, width=64, tokenizer=True)
    path = _write(tmp_path, HEADER)
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(repo / "configs" / "panollava" / "tiny.yaml"),
            f"data.train=[{path}]",
            f"model.tokenizer={tmp_path / 'synth' / 'tokenizer'}",
            f"output_dir={tmp_path / 'runs'}",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "no data rows below the header" in result.output
    assert "Traceback" not in result.output
