"""Helpers shared by the data tests (imported by name: the tests folders are not packages)."""

from __future__ import annotations

import csv
from pathlib import Path


def write_table(path: Path, rows: list[list[str]], header=("url", "query", "annotation")) -> Path:
    """Write a TSV/CSV (by suffix) with standard quoting."""
    delimiter = "\t" if path.suffix == ".tsv" else ","
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
        writer.writerow(list(header))
        writer.writerows(rows)
    return path
