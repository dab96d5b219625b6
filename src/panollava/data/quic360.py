"""QuIC-360 annotation tables: reading (TSV/CSV as published), image resolution and grouping.

Files hold one caption per row with columns ``url, query, annotation`` (published TSV) or
``url, instruction, response`` (CSV form); names are configurable (``data.columns``) and
otherwise detected among the aliases of :mod:`panollava.data.schema`. Standard CSV quoting.

``url`` is resolved to a local file without opening it (tables are lazy about images):

* ``http(s)://…`` -> ``cache_dir / url_cache_name(url)`` (``sha1(url) + extension``, the layout
  written by ``panollava data download``); no cache configured -> unresolved (``None``);
* ``file://…`` or an absolute path -> itself; a relative path -> ``image_root / url``, or the
  table's own folder when no image root is set.

Reading never drops rows: malformed rows (wrong field count) keep a ``problem`` and are reported
by :mod:`panollava.data.validate`. Row numbers are 1-based data rows (header = row 0).

:func:`read_rows` is the one table reader of every command (train, eval, data check, score,
baseline, judge). What it accepts and refuses:

* encodings: UTF-8 (with or without BOM) and UTF-16 *with* a BOM (decoded); anything else
  (Latin-1, UTF-16 without BOM) is a :class:`DataError` naming the file and line, with the
  ``iconv`` command that converts it;
* sizes: a physical line over :data:`MAX_LINE_CHARS` fails as soon as that much is read (a 1 GiB
  line costs ~1 MiB, not gigabytes); a field over Python's ``csv`` limit (128 KiB) is an error
  naming its line;
* quoting: a field that spans lines holding what look like further rows (an unterminated ``"``
  swallowing the rest of the file) is an error naming the line of the stray quote;
* a header with no data rows is an error.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from panollava.data.schema import QUERY_ALIASES, REFERENCE_ALIASES, URL_ALIASES, ColumnsConfig

__all__ = [
    "Annotation",
    "AnnotationTable",
    "DataError",
    "PairGroup",
    "count_summary",
    "group_pairs",
    "image_key",
    "is_missing",
    "is_url",
    "pair_key",
    "read_annotations",
    "read_rows",
    "read_split",
    "resolve_image",
    "url_cache_name",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
_MISSING = {"", "nan", "<na>", "null"}
MAX_LINE_CHARS = 1 << 20  # one physical line of a table (a caption is a few hundred chars)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)


class DataError(ValueError):
    """An annotation file or its rows cannot be used; the message names the file, rows and fix."""


@dataclass(frozen=True)
class Annotation:
    """One caption row. ``image`` is the resolved local file (``None``: URL without a cache)."""

    source: Path
    row: int
    url: str
    query: str
    reference: str
    image: Path | None
    problem: str | None = None  # a malformed row (wrong number of fields)

    @property
    def where(self) -> str:
        return f"{self.source.name}:{self.row}"


@dataclass(frozen=True)
class AnnotationTable:
    """All rows of one file and the (url, query, reference) column names that were used."""

    path: Path
    columns: tuple[str, str, str]
    rows: list[Annotation]


@dataclass(frozen=True)
class PairGroup:
    """One (image, query) pair with all its references (evaluation unit; test has ~5 refs)."""

    url: str
    image: Path | None
    query: str
    references: tuple[str, ...]
    rows: tuple[Annotation, ...]


def is_url(text: str) -> bool:
    """True for ``http://`` and ``https://`` addresses."""
    return text.strip().lower().startswith(("http://", "https://"))


def is_missing(text: str | None) -> bool:
    """Empty or NaN-like cells (``""``, ``nan``, ``<NA>``, ``null``, any case) are missing."""
    return text is None or text.strip().lower() in _MISSING


def url_cache_name(url: str) -> str:
    """Deterministic cache file name of an image URL: ``sha1(url)`` hex + the URL's extension."""
    url = url.strip()
    suffix = Path(unquote(urlparse(url).path)).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        suffix = ".img"
    return hashlib.sha1(url.encode("utf-8")).hexdigest() + suffix


def resolve_image(
    url: str,
    *,
    table_dir: Path,
    image_root: Path | None = None,
    cache_dir: Path | None = None,
) -> Path | None:
    """Local file of ``url`` (see the module docstring); ``None`` for a URL with no cache dir.
    Other URL schemes (``ftp://``, ``s3://`` …) are a :class:`DataError`, never a local path."""
    url = url.strip()
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in ("http", "https", "file"):
        raise DataError(
            f"unsupported URL scheme {scheme.group(1)!r} in {url!r}: only http(s) URLs, "
            "file:// URLs and local paths (download the images first)"
        )
    if is_url(url):
        return cache_dir / url_cache_name(url) if cache_dir is not None else None
    if url.lower().startswith("file://"):
        return Path(unquote(urlparse(url).path))
    path = Path(url).expanduser()
    if path.is_absolute():
        return path
    return (image_root if image_root is not None else table_dir) / path


def table_delimiter(path: Path, first_line: str) -> str:
    """Tab for ``.tsv``, comma for ``.csv``; otherwise tab if the first line has one."""
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return "\t"
    if suffix == ".csv":
        return ","
    return "\t" if "\t" in first_line else ","


def _utf16(path: Path, error: type[DataError]) -> bool:
    """True for a UTF-16 file with a BOM; a NUL byte near the start without one is an error."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return True
    if b"\x00" in head:
        raise error(
            f"{path}: NUL bytes near the start: UTF-16 without a byte-order mark? Convert it "
            f"to UTF-8, e.g. `iconv -f utf-16le -t utf-8 {path}`"
        )
    return False


def _bounded_lines(fh, path: Path, error: type[DataError]) -> Iterator[str]:
    """The file's physical lines, each at most :data:`MAX_LINE_CHARS` (checked while reading);
    ``fh`` is binary (UTF-8, decoded line by line, so errors name their line) or text."""
    number = 0
    while True:
        line = fh.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_CHARS and line[-1:] not in ("\n", b"\n"):
            raise error(
                f"{path}: line {number} is longer than {MAX_LINE_CHARS:,} characters: not an "
                "annotation table (or a broken one)"
            )
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise error(
                    f"{path}: line {number} is not UTF-8 ({exc.reason} at byte {exc.start}); "
                    "tables must be UTF-8 (or UTF-16 with a BOM): convert it, e.g. "
                    f"`iconv -f latin1 -t utf-8 {path}`"
                ) from None
        yield line


def _swallowed(fields: list[str], delimiter: str, width: int) -> bool:
    """True when a field spans lines that look like rows of their own (a stray quote)."""
    return any(
        "\n" in f and any(line.count(delimiter) >= width - 1 for line in f.split("\n")[1:])
        for f in fields
    )


def read_rows(
    path: str | Path, *, error: type[DataError] | None = None
) -> tuple[list[str], list[tuple[int, int, list[str]]]]:
    """(lower-cased header, [(row number, first line, fields)]) of a TSV/CSV table; blank lines
    are skipped, not counted as rows. Raises ``error`` (default :class:`DataError`) for what the module docstring
    lists; rows with a wrong field count are returned for the caller to judge."""
    error = error or DataError
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: annotation file not found")
    utf16 = _utf16(path, error)
    with path.open(newline="", encoding="utf-16") if utf16 else path.open("rb") as fh:
        lines = _bounded_lines(fh, path, error)
        first = next(lines, "")
        delimiter = table_delimiter(path, first)
        reader = csv.reader(_chain(first, lines), delimiter=delimiter)
        rows: list[tuple[int, int, list[str]]] = []
        header: list[str] | None = None
        start = 1
        try:
            for fields in reader:
                if header is None:
                    header = fields
                elif fields:
                    if _swallowed(fields, delimiter, len(header)):
                        raise error(
                            f"{path}: a field starting on line {start} runs over the following "
                            f'lines (to line {reader.line_num}): an unterminated quote `"` on '
                            f'line {start}; close it, or double it ("") inside a quoted field'
                        )
                    rows.append((len(rows) + 1, start, fields))
                start = reader.line_num + 1
        except csv.Error as exc:
            raise error(
                f'{path}: line {start}: {exc} (a stray quote `"`, or a field '
                "too large for a caption)"
            ) from None
    if not header:
        raise error(f"{path}: the file is empty (expected a header row)")
    header = [h.strip().lower() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise error(f"{path}: duplicate header column(s) {dupes}")
    if not rows:
        raise error(f"{path}: no data rows below the header")
    return header, rows


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def _column(header: list[str], chosen: str | None, aliases: Sequence[str], path: Path, what: str):
    if chosen is not None:
        if chosen.lower() not in header:
            raise DataError(f"{path}: no column {chosen!r} (data.columns.{what}); found {header}")
        return chosen.lower()
    found = [a for a in aliases if a in header]
    if len(found) != 1:
        problem = "no" if not found else f"ambiguous ({found})"
        raise DataError(
            f"{path}: {problem} {what} column; expected one of {list(aliases)}, found {header} "
            f"(set data.columns.{what})"
        )
    return found[0]


def read_annotations(
    path: str | Path,
    *,
    columns: ColumnsConfig | None = None,
    image_root: Path | None = None,
    cache_dir: Path | None = None,
) -> AnnotationTable:
    """Read one annotation file; no image is opened. Rows with a wrong field count are kept
    with ``problem`` set (validation reports them)."""
    path = Path(path)
    columns = columns or ColumnsConfig()
    header, raw = read_rows(path)
    names = (
        _column(header, columns.url, URL_ALIASES, path, "url"),
        _column(header, columns.query, QUERY_ALIASES, path, "query"),
        _column(header, columns.reference, REFERENCE_ALIASES, path, "reference"),
    )
    index = [header.index(n) for n in names]
    rows = []
    for number, line, fields in raw:
        problem = None
        if len(fields) != len(header):
            problem = f"line {line}: {len(fields)} fields but the header has {len(header)}"
        url, query, ref = (fields[i] if i < len(fields) else "" for i in index)
        try:
            image = (
                None
                if is_missing(url)
                else resolve_image(
                    url, table_dir=path.parent, image_root=image_root, cache_dir=cache_dir
                )
            )
        except DataError as exc:
            raise DataError(f"{path}: row {number} (line {line}): {exc}") from None
        rows.append(
            Annotation(path, number, url.strip(), query.strip(), ref.strip(), image, problem)
        )
    return AnnotationTable(path, names, rows)


def read_split(
    paths: Iterable[str | Path],
    *,
    columns: ColumnsConfig | None = None,
    image_root: Path | None = None,
    cache_dir: Path | None = None,
) -> list[Annotation]:
    """All rows of several files of one split, in file order (files may be mixed freely)."""
    rows: list[Annotation] = []
    for p in paths:
        table = read_annotations(p, columns=columns, image_root=image_root, cache_dir=cache_dir)
        rows.extend(table.rows)
    return rows


def image_key(row: Annotation) -> str:
    """What identifies a row's image: its resolved file, else its URL."""
    return str(row.image) if row.image is not None else row.url


def pair_key(row: Annotation) -> tuple[str, str]:
    """What identifies a row's (image, query) pair."""
    return image_key(row), row.query


def group_pairs(rows: Iterable[Annotation]) -> list[PairGroup]:
    """Group rows by (image, query) in order of first appearance, keeping every reference."""
    groups: dict[tuple[str, str], list[Annotation]] = {}
    for r in rows:
        groups.setdefault(pair_key(r), []).append(r)
    return [
        PairGroup(g[0].url, g[0].image, g[0].query, tuple(r.reference for r in g), tuple(g))
        for g in groups.values()
    ]


def count_summary(rows: Sequence[Annotation]) -> dict[str, int]:
    """``{"rows", "images", "pairs"}`` counts (images by resolved file, else by URL)."""
    images = {image_key(r) for r in rows}
    return {"rows": len(rows), "images": len(images), "pairs": len(group_pairs(rows))}
