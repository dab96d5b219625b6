"""Reading prediction and reference tables (QuIC-360 TSV/CSV files and prediction CSVs).

References: QuIC-360 annotation files with columns ``url, query, annotation``, with the same
aliases ``train`` accepts (:mod:`panollava.data.schema`: e.g. ``image`` for the url,
``instruction`` for the query, ``response``/``reference``/``caption`` for the annotation).
Tab-separated for ``.tsv``, comma-separated for ``.csv``; both use standard CSV quoting. Files are
read by the one table reader of every command, :func:`panollava.data.quic360.read_rows`
(encodings, quoting errors with line numbers, bounded sizes).

Predictions, one of two layouts:

* **keyed**: ``url, query, prediction`` (+ optional ``reference`` and ``method``);
* **id**: ``id, prediction`` (+ optional ``method``) where ``id`` is the 1-based data row number
  of a references file (the layout of ``quic360_samples/predictions.csv``).

Row numbers in errors are 1-based data rows (the header is row 0, so file line = row + 1).

"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from panollava.data.quic360 import DataError, read_rows
from panollava.data.schema import QUERY_ALIASES, REFERENCE_ALIASES, URL_ALIASES

__all__ = [
    "PredictionRow",
    "PredictionTable",
    "ReferenceRow",
    "ReferenceTable",
    "TableError",
    "read_predictions",
    "read_references",
    "read_table",
]

URL_COLUMNS = URL_ALIASES
QUERY_COLUMNS = QUERY_ALIASES
REFERENCE_COLUMNS = REFERENCE_ALIASES
_MAX_LISTED = 8


class TableError(DataError):
    """A prediction/reference table cannot be used; the message names the file, row and fix."""


@dataclass(frozen=True)
class ReferenceRow:
    row: int  # 1-based data row in the file
    url: str
    query: str
    reference: str


@dataclass(frozen=True)
class ReferenceTable:
    path: Path
    rows: list[ReferenceRow]


@dataclass(frozen=True)
class PredictionRow:
    row: int  # 1-based data row in the file
    run: str  # the ``method`` column, or the table's default run name
    prediction: str
    url: str | None = None  # keyed layout
    query: str | None = None  # keyed layout
    reference: str | None = None  # keyed layout with an inline ``reference`` column
    ref_id: int | None = None  # id layout: 1-based row of the references file


@dataclass(frozen=True)
class PredictionTable:
    path: Path
    layout: str  # "keyed" or "id"
    rows: list[PredictionRow]
    has_inline_references: bool

    @property
    def runs(self) -> list[str]:
        """Run names in order of first appearance."""
        return list(dict.fromkeys(r.run for r in self.rows))


def _listed(items: list[str]) -> str:
    head = ", ".join(items[:_MAX_LISTED])
    return head + (f", … ({len(items)} in all)" if len(items) > _MAX_LISTED else "")


def read_table(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """Read a CSV/TSV file into (lower-cased header, rows as dicts). Ragged rows are errors."""
    path = Path(path)
    header, raw = read_rows(path, error=TableError)
    rows = []
    for number, line, fields in raw:
        if len(fields) != len(header):
            raise TableError(
                f"{path}: row {number} (line {line}) has {len(fields)} fields but the header has "
                f"{len(header)} ({header}); quote fields that contain the delimiter or line breaks"
            )
        rows.append(dict(zip(header, fields, strict=True)) | {"__row__": str(number)})
    return header, rows


def _pick(header: list[str], names: tuple[str, ...], path: Path, what: str) -> str:
    found = [n for n in names if n in header]
    if not found:
        raise TableError(f"{path}: no {what} column; expected one of {list(names)}, found {header}")
    if len(found) > 1:
        raise TableError(f"{path}: ambiguous {what} columns {found}; keep only one")
    return found[0]


def read_references(path: str | Path) -> ReferenceTable:
    """Read a QuIC-360 annotation file (``url, query, annotation``); empty cells are errors."""
    path = Path(path)
    header, raw = read_table(path)
    ucol = _pick(header, URL_COLUMNS, path, "url")
    qcol = _pick(header, QUERY_COLUMNS, path, "query")
    rcol = _pick(header, REFERENCE_COLUMNS, path, "reference")
    rows, empty = [], []
    for r in raw:
        url, query, ref = r[ucol].strip(), r[qcol].strip(), r[rcol].strip()
        if not (url and query and ref):
            empty.append(r["__row__"])
            continue
        rows.append(ReferenceRow(int(r["__row__"]), url, query, ref))
    if empty:
        raise TableError(
            f"{path}: empty url/{qcol}/{rcol} cell in row(s) {_listed(empty)}; "
            "fill them in or remove those rows"
        )
    return ReferenceTable(path, rows)


def read_predictions(path: str | Path, *, default_run: str | None = None) -> PredictionTable:
    """Read a predictions table (keyed or id layout, see the module docstring).

    Empty or missing prediction cells are kept as empty predictions (they score 0), never dropped.
    """
    path = Path(path)
    header, raw = read_table(path)
    if "prediction" not in header:
        raise TableError(f"{path}: no `prediction` column (found {header})")
    run_default = default_run or path.stem
    has_method = "method" in header
    ucol = next((c for c in URL_COLUMNS if c in header), None)
    if "id" in header:
        layout, inline = "id", False
    elif ucol is not None:
        layout = "keyed"
        ucol = _pick(header, URL_COLUMNS, path, "url")
        _pick(header, QUERY_COLUMNS, path, "query")
        ref_cols = [c for c in REFERENCE_COLUMNS if c in header]
        inline = bool(ref_cols)
    else:
        raise TableError(
            f"{path}: predictions need either `url, query, prediction` or `id, prediction` "
            f"columns (found {header})"
        )
    rows: list[PredictionRow] = []
    bad: list[str] = []
    for r in raw:
        number = int(r["__row__"])
        run = r["method"].strip() if has_method else run_default
        if has_method and not run:
            bad.append(f"row {number}: empty method")
            continue
        pred = r["prediction"]
        if layout == "id":
            try:
                ref_id = int(r["id"])
            except ValueError:
                bad.append(f"row {number}: id {r['id']!r} is not an integer")
                continue
            if ref_id < 1:
                bad.append(f"row {number}: id {ref_id} < 1 (ids are 1-based row numbers)")
                continue
            rows.append(PredictionRow(number, run, pred, ref_id=ref_id))
            continue
        qcol = _pick(header, QUERY_COLUMNS, path, "query")
        url, query = r[ucol].strip(), r[qcol].strip()
        if not (url and query):
            bad.append(f"row {number}: empty url or {qcol}")
            continue
        ref = None
        if inline:
            ref = r[_pick(header, REFERENCE_COLUMNS, path, "reference")].strip()
            if not ref:
                bad.append(f"row {number}: empty reference")
                continue
        rows.append(PredictionRow(number, run, pred, url=url, query=query, reference=ref))
    if bad:
        raise TableError(f"{path}: {len(bad)} bad row(s): {_listed(bad)}")
    return PredictionTable(path, layout, rows, inline)
