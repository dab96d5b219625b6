"""QuIC-360 tables: published counts, CSV aliases, configurable columns, image resolution."""

from pathlib import Path

import pytest
from data_helpers import write_table

from panollava.data.quic360 import (
    DataError,
    count_summary,
    group_pairs,
    read_annotations,
    read_split,
    resolve_image,
    url_cache_name,
)
from panollava.data.schema import ColumnsConfig

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()
QUIC = SHARED / "data" / "quic360"
SAMPLES = SHARED / "data" / "quic360_samples"


@pytest.mark.parametrize(
    ("split", "rows", "images", "pairs"),
    [
        ("train", 9459, 3007, None),
        ("valid", 1251, 400, None),
        ("test", 6246, 393, 1211),
        ("test-refer", 6000, 2000, None),
    ],
)
def test_published_counts(split, rows, images, pairs):
    counts = count_summary(read_split([QUIC / f"{split}.tsv"]))
    assert counts["rows"] == rows and counts["images"] == images
    if pairs is not None:
        assert counts["pairs"] == pairs


def test_test_split_groups_about_five_references_per_pair():
    groups = group_pairs(read_split([QUIC / "test.tsv"]))
    refs = [len(g.references) for g in groups]
    assert len(groups) == 1211 and sum(refs) == 6246
    assert 5.0 <= sum(refs) / len(refs) <= 5.5


def test_quoted_fields_are_parsed_like_pandas():
    rows = read_split([QUIC / "train.tsv"])
    assert not any(r.problem for r in rows)
    assert not any(r.reference.startswith('"') for r in rows)
    assert any('"' in r.reference for r in rows)  # doubled quotes become one


def test_urls_are_lazy_and_cached_by_name(tmp_path):
    """No image is opened or required: http URLs resolve to the cache (or stay unresolved)."""
    rows = read_split([QUIC / "valid.tsv"], cache_dir=tmp_path)
    url = rows[0].url
    assert url.startswith("https://")
    assert rows[0].image == tmp_path / url_cache_name(url)
    assert not rows[0].image.exists()
    assert read_split([QUIC / "valid.tsv"])[0].image is None


def test_cache_name_is_deterministic():
    a = url_cache_name("https://live.staticflickr.com/1/2_abc_k.JPG")
    assert a == url_cache_name(" https://live.staticflickr.com/1/2_abc_k.JPG ")
    assert a.endswith(".jpg") and len(a) == 40 + 4
    assert url_cache_name("https://x.org/photo?id=3").endswith(".img")
    assert url_cache_name("https://x.org/a.jpg") != url_cache_name("https://x.org/b.jpg")


def test_relative_paths_resolve_against_table_or_root(tmp_path):
    assert resolve_image("a/b.jpg", table_dir=tmp_path) == tmp_path / "a/b.jpg"
    root = tmp_path / "root"
    assert resolve_image("a/b.jpg", table_dir=tmp_path, image_root=root) == root / "a/b.jpg"
    assert resolve_image("/abs/c.jpg", table_dir=tmp_path, image_root=root) == Path("/abs/c.jpg")
    assert resolve_image("file:///abs/d%20e.jpg", table_dir=tmp_path) == Path("/abs/d e.jpg")
    rows = read_split([SAMPLES / "samples.csv"])
    assert all(r.image is not None and r.image.is_file() for r in rows)


def test_csv_aliases_and_configured_columns(tmp_path):
    csv_file = write_table(
        tmp_path / "a.csv", [["x.jpg", "people", "two people"]], ("url", "instruction", "response")
    )
    row = read_annotations(csv_file).rows[0]
    assert (row.query, row.reference) == ("people", "two people")
    odd = write_table(
        tmp_path / "b.tsv", [["y.jpg", "cars", "a car"]], ("img", "q", "caption_text")
    )
    with pytest.raises(DataError, match=r"data\.columns\.url"):
        read_annotations(odd)
    cols = ColumnsConfig(url="img", query="q", reference="caption_text")
    table = read_annotations(odd, columns=cols)
    assert table.columns == ("img", "q", "caption_text") and table.rows[0].query == "cars"
    both = write_table(
        tmp_path / "c.tsv", [["z", "a", "b", "c"]], ("url", "query", "instruction", "annotation")
    )
    with pytest.raises(DataError, match="ambiguous"):
        read_annotations(both)


def test_several_files_per_split_are_mixed(tmp_path):
    a = write_table(tmp_path / "a.tsv", [["1.jpg", "q", "r1"], ["1.jpg", "q", "r2"]])
    b = write_table(tmp_path / "b.csv", [["1.jpg", "q", "r3"], ["2.jpg", "q", "r4"]])
    rows = read_split([a, b])
    assert [r.source.name for r in rows] == ["a.tsv", "a.tsv", "b.csv", "b.csv"]
    groups = group_pairs(rows)
    assert [g.references for g in groups] == [("r1", "r2", "r3"), ("r4",)]


def test_malformed_rows_are_kept_not_dropped(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("url\tquery\tannotation\na.jpg\tq\tok\nb.jpg\tonly two\n\nc.jpg\tq\tr\textra\n")
    rows = read_annotations(path).rows
    assert [r.row for r in rows] == [1, 2, 3]
    assert (
        rows[0].problem is None and "2 fields" in rows[1].problem and "4 fields" in rows[2].problem
    )
