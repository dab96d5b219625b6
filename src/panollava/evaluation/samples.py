"""Turning prediction and reference tables into scored samples under one of two protocols.

* ``grouped`` (default, the correct one): one sample per (image, query); its prediction is scored
  against all references of that (image, query).
* ``per_row`` (the published protocol): every reference row is a sample with a single reference;
  the prediction of its (image, query) is repeated for each of that pair's rows. CIDEr's IDF is
  then computed over rows, so the numbers differ from ``grouped``.

Sample ids are stable across runs so that runs can be paired: ``url | query`` (grouped) and
``url | query | #k`` for the k-th reference row of that pair (per_row).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from panollava.evaluation.tables import PredictionRow, PredictionTable, ReferenceTable, TableError

__all__ = ["PROTOCOLS", "SampleSet", "build_sample_sets"]

PROTOCOLS = ("grouped", "per_row")
_MAX_LISTED = 8


@dataclass
class SampleSet:
    """The samples of one run: parallel lists, one entry per sample."""

    run: str
    protocol: str
    sample_ids: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    references: list[list[str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # reference pairs/rows without a prediction

    def add(self, sample_id: str, url: str, query: str, pred: str, refs: list[str]) -> None:
        self.sample_ids.append(sample_id)
        self.urls.append(url)
        self.queries.append(query)
        self.predictions.append(pred)
        self.references.append(refs)

    def __len__(self) -> int:
        return len(self.sample_ids)


@dataclass(frozen=True)
class _RefRow:
    key: tuple[str, str]
    text: str
    source_row: int  # row in the references file (or predictions file for inline references)


def _listed(items: list[str]) -> str:
    head = "; ".join(items[:_MAX_LISTED])
    return head + (f"; … ({len(items)} in all)" if len(items) > _MAX_LISTED else "")


def _key_text(key: tuple[str, str]) -> str:
    return f"{key[0]} | {key[1]}"


def _resolve_keys(
    table: PredictionTable, refs: ReferenceTable | None
) -> list[tuple[PredictionRow, tuple[str, str]]]:
    """(prediction row, (url, query)) for every prediction row; id layout joins on row ids."""
    if table.layout == "keyed":
        return [(r, (r.url or "", r.query or "")) for r in table.rows]
    if refs is None:
        raise TableError(
            f"{table.path}: predictions have an `id` column (1-based row numbers of a references "
            "file) — pass --references FILE (e.g. the samples.csv / test.tsv they index)"
        )
    bad = [f"row {r.row}: id {r.ref_id}" for r in table.rows if r.ref_id > len(refs.rows)]  # type: ignore[operator]
    if bad:
        raise TableError(
            f"{table.path}: ids beyond the {len(refs.rows)} rows of {refs.path}: {_listed(bad)}; "
            "check that --references is the file the ids were made for"
        )
    out = []
    for r in table.rows:
        ref_row = refs.rows[r.ref_id - 1]  # type: ignore[operator]
        out.append((r, (ref_row.url, ref_row.query)))
    return out


def _predictions_by_key(
    run: str, rows: list[tuple[PredictionRow, tuple[str, str]]], path: str
) -> dict[tuple[str, str], str]:
    by_key: dict[tuple[str, str], str] = {}
    first_row: dict[tuple[str, str], int] = {}
    conflicts = []
    for row, key in rows:
        if key in by_key and by_key[key] != row.prediction:
            conflicts.append(f"{_key_text(key)} (rows {first_row[key]} and {row.row})")
        by_key.setdefault(key, row.prediction)
        first_row.setdefault(key, row.row)
    if conflicts:
        raise TableError(
            f"{path}: run {run!r} has different predictions for the same (image, query): "
            f"{_listed(conflicts)}. Keep one prediction per pair, or score each row on its own "
            "with --protocol per_row and an id/reference per row"
        )
    return by_key


def _reference_rows(
    table: PredictionTable, refs: ReferenceTable | None, rows: list[tuple[PredictionRow, tuple]]
) -> list[_RefRow]:
    if refs is not None:
        return [_RefRow((r.url, r.query), r.reference, r.row) for r in refs.rows]
    if not table.has_inline_references:
        raise TableError(
            f"{table.path}: no references — pass --references FILE (QuIC-360 url, query, "
            "annotation) or add a `reference` column to the predictions"
        )
    return [_RefRow(key, row.reference or "", row.row) for row, key in rows]


def _check_coverage(
    run: str, pred_keys: set, ref_keys: set, path: str, ref_path: str, allow_missing: bool
) -> list[str]:
    unknown = sorted(_key_text(k) for k in pred_keys - ref_keys)
    if unknown:
        raise TableError(
            f"{path}: run {run!r} has {len(unknown)} prediction(s) whose (url, query) is not in "
            f"{ref_path}: {_listed(unknown)}. Fix the url/query spelling or use the matching "
            "references file"
        )
    missing = sorted(_key_text(k) for k in ref_keys - pred_keys)
    if missing and not allow_missing:
        raise TableError(
            f"{path}: run {run!r} has no prediction for {len(missing)} (url, query) pair(s) of "
            f"{ref_path}: {_listed(missing)}. Predict them, or pass --allow-missing to score only "
            "the pairs that have predictions (the count is recorded in metrics.json)"
        )
    return missing


def _own_rows(
    out: SampleSet,
    rows: list[tuple[PredictionRow, tuple[str, str]]],
    ref_rows: list[_RefRow],
    id_layout: bool,
    paths: tuple[str, str],
    allow_missing: bool,
) -> list[str]:
    """Per-row samples where each prediction row names its own reference row; returns missing."""
    path, ref_path = paths
    if not id_layout:  # inline references: the prediction row is the reference row
        pred_by_row = {row.row: row.prediction for row, _ in rows}
        return _add_rows(out, ref_rows, pred_by_row)
    seen: dict[int, int] = {}
    dupes = []
    for row, _ in rows:
        assert row.ref_id is not None
        if row.ref_id in seen:
            dupes.append(f"id {row.ref_id} (rows {seen[row.ref_id]} and {row.row})")
        seen.setdefault(row.ref_id, row.row)
    if dupes:
        raise TableError(f"{path}: run {out.run!r} repeats ids: {_listed(dupes)}")
    pred_by_row = {row.ref_id: row.prediction for row, _ in rows}
    missing = _add_rows(out, ref_rows, pred_by_row)
    if missing and not allow_missing:
        raise TableError(
            f"{path}: run {out.run!r} has no prediction for {len(missing)} row(s) of {ref_path}: "
            f"{_listed(missing)}. Predict them or pass --allow-missing"
        )
    return missing


def _add_rows(out: SampleSet, ref_rows: list[_RefRow], pred_by_row: dict) -> list[str]:
    rank: dict[tuple[str, str], int] = defaultdict(int)
    missing = []
    for ref in ref_rows:
        rank[ref.key] += 1
        if ref.source_row not in pred_by_row:
            missing.append(f"row {ref.source_row}")
            continue
        sid = f"{_key_text(ref.key)} | #{rank[ref.key]}"
        out.add(sid, *ref.key, pred_by_row[ref.source_row], [ref.text])
    return missing


def _build_one(
    run: str,
    rows: list[tuple[PredictionRow, tuple[str, str]]],
    ref_rows: list[_RefRow],
    *,
    protocol: str,
    id_layout: bool,
    inline: bool,
    paths: tuple[str, str],
    allow_missing: bool,
) -> SampleSet:
    path, ref_path = paths
    refs_by_key: dict[tuple[str, str], list[_RefRow]] = defaultdict(list)
    for ref in ref_rows:
        refs_by_key[ref.key].append(ref)
    out = SampleSet(run=run, protocol=protocol)
    if protocol == "per_row" and (id_layout or inline):
        # each prediction row is scored against its own reference row
        out.missing = _own_rows(out, rows, ref_rows, id_layout, paths, allow_missing)
    else:
        by_key = _predictions_by_key(run, rows, path)
        out.missing = _check_coverage(
            run, set(by_key), set(refs_by_key), path, ref_path, allow_missing
        )
        if protocol == "grouped":  # pairs in order of first appearance in the references
            for key, refs in refs_by_key.items():
                if key in by_key:
                    out.add(_key_text(key), *key, by_key[key], [r.text for r in refs])
        else:  # reference rows in file order
            rank: dict[tuple[str, str], int] = defaultdict(int)
            for ref in ref_rows:
                rank[ref.key] += 1
                if ref.key in by_key:
                    sid = f"{_key_text(ref.key)} | #{rank[ref.key]}"
                    out.add(sid, *ref.key, by_key[ref.key], [ref.text])
    out.counts = {
        "samples": len(out),
        "images": len(set(out.urls)),
        "queries": len(set(out.queries)),
        "references": sum(len(r) for r in out.references),
        "prediction_rows": len(rows),
        "empty_predictions": sum(1 for p in out.predictions if not p.strip()),
        "missing": len(out.missing),
    }
    return out


def build_sample_sets(
    predictions: PredictionTable,
    references: ReferenceTable | None = None,
    *,
    protocol: str = "grouped",
    allow_missing: bool = False,
) -> dict[str, SampleSet]:
    """One :class:`SampleSet` per run (``method`` value) of a predictions table.

    References come from ``references`` when given (an inline ``reference`` column is then
    ignored), else from the predictions' own ``reference`` column. Every prediction must match a
    reference; every reference pair must have a prediction unless ``allow_missing``.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {list(PROTOCOLS)}")
    keyed = _resolve_keys(predictions, references)
    ref_rows_all = None
    ref_path = str(references.path) if references is not None else str(predictions.path)
    out = {}
    for run in predictions.runs:
        rows = [(row, key) for row, key in keyed if row.run == run]
        if references is not None:
            ref_rows_all = ref_rows_all or _reference_rows(predictions, references, rows)
            ref_rows = ref_rows_all
        else:
            ref_rows = _reference_rows(predictions, None, rows)
        out[run] = _build_one(
            run,
            rows,
            ref_rows,
            protocol=protocol,
            id_layout=predictions.layout == "id",
            inline=references is None,
            paths=(str(predictions.path), ref_path),
            allow_missing=allow_missing,
        )
    return out
