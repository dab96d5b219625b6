"""Row validation of annotation tables: every problem reported, nothing dropped silently.

Issue kinds (one :class:`RowIssue` per row and kind):

* ``malformed`` — wrong number of fields; ``empty_url`` / ``empty_query`` / ``empty_reference``
  — empty or NaN-like cells;
* ``missing_image`` — no such file (or an http URL that was never downloaded);
  ``unreadable_image`` — not an image, or truncated/corrupt (``decode`` mode);
  ``aspect`` — not a 2:1 equirectangular image;
* ``duplicate`` — same url, query and reference as an earlier row (across all files given).

Each unique image is checked once (threads). Kinds listed in ``allow`` become warnings; all
others are errors. :func:`ensure_valid` is what training calls: errors refuse the data with one
message listing the rows, unless ``skip_invalid`` — then the rows are skipped and written to
``<run_dir>/skipped_rows.tsv``.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from panollava.data.images import ImageLoadError, open_image
from panollava.data.quic360 import Annotation, DataError, image_key, is_missing
from panollava.data.schema import ImageConfig

__all__ = [
    "ISSUE_KINDS",
    "ImageCheck",
    "RowIssue",
    "ValidationReport",
    "check_image",
    "ensure_valid",
    "validate_rows",
]

log = logging.getLogger(__name__)

ISSUE_KINDS = (
    "malformed",
    "empty_url",
    "empty_query",
    "empty_reference",
    "missing_image",
    "unreadable_image",
    "aspect",
    "duplicate",
)
ImageCheck = Literal["decode", "header", "off"]
_SWAPPED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF rotations by 90 degrees
_LISTED = 25


@dataclass(frozen=True)
class RowIssue:
    """One problem of one row (``row`` is the 1-based data row of ``source``)."""

    source: Path
    row: int
    url: str
    kind: str
    detail: str
    severity: Literal["error", "warning"] = "error"

    @property
    def where(self) -> str:
        return f"{self.source.name}:{self.row}"


@dataclass
class ValidationReport:
    """Issues of a set of rows, with counts for the summary table."""

    rows: int
    images: int
    issues: list[RowIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[RowIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[RowIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def bad_rows(self) -> set[tuple[Path, int]]:
        """``(source, row)`` of every row with at least one error."""
        return {(i.source, i.row) for i in self.errors}

    def counts(self) -> dict[str, Counter[str]]:
        """``{kind: Counter(severity)}`` over all issues (kinds in :data:`ISSUE_KINDS` order)."""
        out: dict[str, Counter[str]] = {k: Counter() for k in ISSUE_KINDS}
        for i in self.issues:
            out[i.kind][i.severity] += 1
        return out

    def message(self, limit: int = _LISTED) -> str:
        """One readable message listing the errors (first ``limit``) and how to proceed."""
        errs = self.errors
        lines = [f"{len(errs)} error(s) on {len(self.bad_rows())} of {self.rows} rows:"]
        lines += [f"  {i.where} [{i.kind}] {i.detail} ({i.url})" for i in errs[:limit]]
        if len(errs) > limit:
            lines.append(f"  … {len(errs) - limit} more (run `panollava data check FILE`)")
        lines.append(
            "fix the rows, or set data.skip_invalid: true to skip them (the list is written "
            "to the run folder)"
        )
        return "\n".join(lines)

    def write_tsv(self, path: Path, *, errors_only: bool = False) -> Path:
        """Write the issues as a TSV (``source, row, url, kind, severity, detail``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="\t")
            w.writerow(["source", "row", "url", "kind", "severity", "detail"])
            for i in self.errors if errors_only else self.issues:
                w.writerow([i.source, i.row, i.url, i.kind, i.severity, i.detail])
        return path


def check_image(
    path: Path | None,
    url: str,
    *,
    mode: ImageCheck = "decode",
    aspect_tolerance: float = 0.02,
    image_cfg: ImageConfig | None = None,
) -> tuple[str, str] | None:
    """``(kind, detail)`` of the problem with one image, or ``None`` when it is fine.

    ``header`` reads the size and, for JPEGs, checks the end-of-image marker (a truncated
    download has none); ``decode`` also decodes (JPEGs at 1/8 scale) to catch corrupt data.
    """
    if path is None:
        hint = "an http(s) URL with no local copy: set data.cache_dir (--cache) or run "
        return "missing_image", hint + "`panollava data download`"
    if not path.is_file():
        return "missing_image", f"no file {path}"
    try:
        with open_image(path, image_cfg or ImageConfig()) as img:
            w, h = img.size
            if img.getexif().get(0x0112, 1) in _SWAPPED_ORIENTATIONS:
                w, h = h, w
            if img.format == "JPEG" and not _jpeg_complete(path):
                return "unreadable_image", f"truncated JPEG {path} (no end-of-image marker)"
            if mode == "decode":
                img.draft("RGB", (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
                img.load()
    except ImageLoadError as exc:  # what the loaders refuse: unreadable, too large, too small
        return "unreadable_image", str(exc)
    except (OSError, SyntaxError, ValueError) as exc:
        return "unreadable_image", f"corrupt or truncated image {path} ({exc})"
    if abs(w / h - 2.0) > 2.0 * aspect_tolerance:
        return "aspect", f"{w}x{h} is not 2:1 equirectangular ({path.name})"
    return None


def _jpeg_complete(path: Path, tail: int = 1 << 16) -> bool:
    """True when the JPEG's end-of-image marker (FFD9) follows its last start-of-scan (FFDA) in
    the last ``tail`` bytes (trailing data after it is allowed). Scan data cannot hold FFD9
    (0xFF bytes are stuffed), so a file cut short has none there."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - tail))
        data = fh.read()
    return data.rfind(b"\xff\xd9") > data.rfind(b"\xff\xda")


def _cell_issues(rows: Sequence[Annotation]) -> list[tuple[Annotation, str, str]]:
    out: list[tuple[Annotation, str, str]] = []
    first: dict[tuple[str, str, str], Annotation] = {}
    for r in rows:
        if r.problem:
            out.append((r, "malformed", r.problem))
        for kind, text in (("empty_url", r.url), ("empty_query", r.query)):
            if is_missing(text):
                out.append((r, kind, f"{kind.split('_')[1]} is empty or NaN"))
        if is_missing(r.reference):
            out.append((r, "empty_reference", "reference is empty or NaN"))
        key = (r.url, r.query, r.reference)
        if key in first:
            out.append((r, "duplicate", f"same url, query and reference as {first[key].where}"))
        else:
            first[key] = r
    return out


def validate_rows(
    rows: Sequence[Annotation],
    *,
    images: ImageCheck = "decode",
    allow: Collection[str] = (),
    aspect_tolerance: float = 0.02,
    workers: int = 4,
    image_cfg: ImageConfig | None = None,
) -> ValidationReport:
    """Check every row (cells, duplicates) and every unique image once; see module docstring.
    ``image_cfg``: the loaders' size limits (``image.max_pixels``/``min_size``)."""
    unknown = sorted(set(allow) - set(ISSUE_KINDS))
    if unknown:
        raise ValueError(f"unknown issue kind(s) {unknown}; valid: {list(ISSUE_KINDS)}")
    found = _cell_issues(rows)
    by_image: dict[str, tuple[Path | None, str]] = {}
    for r in rows:
        if not is_missing(r.url):
            by_image.setdefault(image_key(r), (r.image, r.url))
    if images != "off":
        keys = list(by_image)

        def one(key: str) -> tuple[str, str] | None:
            path, url = by_image[key]
            return check_image(
                path, url, mode=images, aspect_tolerance=aspect_tolerance, image_cfg=image_cfg
            )

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = dict(zip(keys, pool.map(one, keys), strict=True))
        for r in rows:
            res = None if is_missing(r.url) else results[image_key(r)]
            if res is not None:
                found.append((r, *res))
    issues = [
        RowIssue(r.source, r.row, r.url, kind, detail, "warning" if kind in allow else "error")
        for r, kind, detail in found
    ]
    issues.sort(key=lambda i: (str(i.source), i.row, ISSUE_KINDS.index(i.kind)))
    return ValidationReport(rows=len(rows), images=len(by_image), issues=issues)


def ensure_valid(
    rows: Sequence[Annotation],
    *,
    images: ImageCheck = "header",
    skip_invalid: bool = False,
    run_dir: Path | None = None,
    allow: Collection[str] = (),
    aspect_tolerance: float = 0.02,
    image_cfg: ImageConfig | None = None,
) -> list[Annotation]:
    """Rows safe to train on: refuses broken rows (one :class:`DataError` listing them), or with
    ``skip_invalid`` skips them and writes ``run_dir/skipped_rows.tsv``. Warnings are logged."""
    report = validate_rows(
        rows, images=images, allow=allow, aspect_tolerance=aspect_tolerance, image_cfg=image_cfg
    )
    if report.warnings:
        kinds = Counter(i.kind for i in report.warnings)
        log.warning("data: %d warning(s) accepted: %s", len(report.warnings), dict(kinds))
    if report.ok:
        return list(rows)
    if not skip_invalid:
        raise DataError(report.message())
    if run_dir is None:
        raise DataError("data.skip_invalid needs a run folder to write the skipped rows to")
    listing = report.write_tsv(Path(run_dir) / "skipped_rows.tsv", errors_only=True)
    bad = report.bad_rows()
    kept = [r for r in rows if (r.source, r.row) not in bad]
    log.warning(
        "data: skipped %d of %d rows with errors (data.skip_invalid); listed in %s",
        len(rows) - len(kept),
        len(rows),
        listing,
    )
    return kept
