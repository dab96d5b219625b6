"""Downloading the panoramas of a QuIC-360 file: concurrent, retried, atomic and resumable.

``download_table(table, out)`` fetches every distinct http(s) ``url`` of ``table`` into
``out/images/<sha1(url)><ext>`` (:func:`~panollava.data.quic360.url_cache_name`, so
``data.cache_dir: out/images`` also serves the original file) and writes:

* ``out/<stem>.tsv`` — the rows whose image is available, ``url`` rewritten to the local file
  (relative to ``out``); local-path rows are kept, re-based on ``out``;
* ``out/<stem>.failed.tsv`` — the rows left out because their download failed (dead links);
* ``out/<stem>.manifest.tsv`` — one line per URL: url, path, bytes, sha256, status
  (``downloaded`` / ``cached`` / ``failed``), attempts, error.

The input file is never rewritten. Each download streams into ``<name>.<pid>.part`` and is
renamed only when complete and decodable, so a killed run leaves no half file under a final
name; a rerun skips complete files (after checking they decode) and removes parts left by dead
processes. 404-like statuses, oversize and non-image bodies fail at once; 5xx/429, timeouts,
connection errors and truncated bodies are retried with exponential backoff.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from panollava.data.quic360 import (
    AnnotationTable,
    DataError,
    is_url,
    read_annotations,
    url_cache_name,
)
from panollava.data.schema import ColumnsConfig
from panollava.data.validate import check_image
from panollava.fileutil import sha256_file

__all__ = [
    "DownloadOptions",
    "DownloadReport",
    "ManifestEntry",
    "download_table",
    "download_url",
    "remove_stale_parts",
]

log = logging.getLogger(__name__)

_PERMANENT_HTTP = {400, 401, 403, 404, 405, 410, 451}
_PART = re.compile(r"\.(\d+)\.part$")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class DownloadOptions:
    """Network behaviour. ``timeout_s`` bounds each socket wait, ``deadline_s`` a whole attempt."""

    workers: int = 8
    retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    timeout_s: float = 30.0
    deadline_s: float = 600.0
    max_bytes: int = 200 * 1024 * 1024
    user_agent: str = "panollava-downloader/0.1 (+https://github.com/wooseungw/panollava)"


@dataclass(frozen=True)
class ManifestEntry:
    """The outcome for one URL (``path`` relative to the output folder)."""

    url: str
    path: str
    bytes: int
    sha256: str
    status: str  # downloaded | cached | failed
    attempts: int = 0
    error: str = ""


@dataclass(frozen=True)
class DownloadReport:
    """Everything one :func:`download_table` call wrote."""

    table: Path
    failed_table: Path
    manifest: Path
    entries: list[ManifestEntry]
    rows_kept: int
    rows_failed: int

    def count(self, status: str) -> int:
        return sum(e.status == status for e in self.entries)


class _Transient(Exception):
    """Worth retrying (server error, timeout, dropped connection, truncated body)."""


class _Permanent(Exception):
    """Retrying cannot help (missing, forbidden, too large, not an image)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_parts(folder: Path) -> list[Path]:
    """Delete ``*.<pid>.part`` files whose process is gone (left by killed runs)."""
    removed = []
    for part in folder.glob("*.part"):
        m = _PART.search(part.name)
        if m is None or not _pid_alive(int(m.group(1))):
            part.unlink(missing_ok=True)
            removed.append(part)
    if removed:
        log.info(
            "removed %d partial file(s) left by an interrupted run in %s", len(removed), folder
        )
    return removed


def _stream(url: str, part: Path, opts: DownloadOptions) -> tuple[int, str]:
    """Fetch ``url`` into ``part``; returns (bytes, sha256). Raises _Transient/_Permanent."""
    request = urllib.request.Request(url, headers={"User-Agent": opts.user_agent})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=opts.timeout_s) as resp:
            declared = resp.headers.get("Content-Length")
            expected = int(declared) if declared and declared.isdigit() else None
            if expected is not None and expected > opts.max_bytes:
                raise _Permanent(f"{expected:,} bytes exceeds the {opts.max_bytes:,}-byte limit")
            digest, size = hashlib.sha256(), 0
            with part.open("wb") as fh:
                while chunk := resp.read(_CHUNK):
                    size += len(chunk)
                    if size > opts.max_bytes:
                        raise _Permanent(f"body exceeds the {opts.max_bytes:,}-byte limit")
                    if time.monotonic() - start > opts.deadline_s:
                        raise _Transient(f"slower than the {opts.deadline_s:.0f} s deadline")
                    digest.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
    except urllib.error.HTTPError as exc:
        if exc.code in _PERMANENT_HTTP:
            raise _Permanent(f"HTTP {exc.code} {exc.reason}") from None
        raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
    except http.client.HTTPException as exc:  # IncompleteRead, BadStatusLine, …
        raise _Transient(f"truncated response ({type(exc).__name__})") from None
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Transient(f"{type(exc).__name__}: {reason}") from None
    if expected is not None and size != expected:
        raise _Transient(f"truncated body: {size:,} of {expected:,} bytes")
    return size, digest.hexdigest()


def _attempt(url: str, dest: Path, opts: DownloadOptions) -> tuple[int, str]:
    """One download attempt into a part file, checked and renamed into place."""
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    try:
        size, sha = _stream(url, part, opts)
        problem = check_image(part, url, mode="decode")
        if problem is not None and problem[0] != "aspect":
            raise _Permanent(f"the body is not a readable image ({size:,} bytes)")
        os.replace(part, dest)  # atomic: dest is either absent or complete
        return size, sha
    finally:
        part.unlink(missing_ok=True)


def download_url(url: str, dest: Path, opts: DownloadOptions | None = None) -> ManifestEntry:
    """Download one URL to ``dest`` (skipped when ``dest`` exists and decodes)."""
    opts = opts or DownloadOptions()
    name = dest.name
    if dest.is_file():
        problem = check_image(dest, url, mode="decode")
        if problem is None or problem[0] == "aspect":  # complete (aspect is data check's job)
            return ManifestEntry(url, name, dest.stat().st_size, sha256_file(dest), "cached")
        log.warning("%s exists but does not decode: downloading it again", dest)
        dest.unlink()
    error = ""
    for attempt in range(1, opts.retries + 2):
        try:
            size, sha = _attempt(url, dest, opts)
            return ManifestEntry(url, name, size, sha, "downloaded", attempt)
        except _Permanent as exc:
            return ManifestEntry(url, name, 0, "", "failed", attempt, str(exc))
        except _Transient as exc:
            error = str(exc)
            if attempt <= opts.retries:
                delay = min(opts.max_backoff_s, opts.backoff_s * 2 ** (attempt - 1))
                log.debug("%s: %s; retry %d in %.2f s", url, error, attempt, delay)
                time.sleep(delay)
    return ManifestEntry(url, name, 0, "", "failed", opts.retries + 1, f"gave up: {error}")


def _write_rows(path: Path, header: list[str], rows: list[list[str]]) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)


def _write_manifest(path: Path, entries: list[ManifestEntry]) -> None:
    fields = ["url", "path", "bytes", "sha256", "status", "attempts", "error"]
    rows = [[getattr(e, f) for f in fields] for e in entries]
    for row in rows:
        row[1] = f"images/{row[1]}"
    _write_rows(path, fields, [[str(c) for c in r] for r in rows])


def download_table(
    table: str | Path,
    out: str | Path,
    *,
    opts: DownloadOptions | None = None,
    columns: ColumnsConfig | None = None,
    progress: Callable[[ManifestEntry], None] | None = None,
) -> DownloadReport:
    """Download the images of ``table`` into ``out`` (see the module docstring)."""
    table, out = Path(table).resolve(), Path(out).resolve()
    opts = opts or DownloadOptions()
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    stem = table.stem
    paths = {k: out / f"{stem}{k}.tsv" for k in ("", ".failed", ".manifest")}
    if table in {p.resolve() for p in paths.values()}:
        raise DataError(f"{table}: --out would overwrite the input file; choose another folder")
    remove_stale_parts(images)
    parsed = read_annotations(table, columns=columns)
    urls = list(dict.fromkeys(r.url for r in parsed.rows if is_url(r.url)))
    entries: dict[str, ManifestEntry] = {}
    with ThreadPoolExecutor(max_workers=max(1, opts.workers)) as pool:
        futures = [pool.submit(download_url, u, images / url_cache_name(u), opts) for u in urls]
        for fut in as_completed(futures):
            entry = fut.result()
            entries[entry.url] = entry
            if progress is not None:
                progress(entry)
    ordered = [entries[u] for u in urls]
    kept, failed = _split_rows(parsed, entries, out)
    url_col, query_col, ref_col = parsed.columns
    header = [url_col, query_col, ref_col]
    _write_rows(paths[""], header, kept)
    _write_rows(paths[".failed"], [*header, "error"], failed)
    _write_manifest(paths[".manifest"], ordered)
    return DownloadReport(
        paths[""], paths[".failed"], paths[".manifest"], ordered, len(kept), len(failed)
    )


def _split_rows(
    parsed: AnnotationTable, entries: dict[str, ManifestEntry], out: Path
) -> tuple[list[list[str]], list[list[str]]]:
    """Rows for the new table (url -> local path) and rows whose download failed."""
    kept: list[list[str]] = []
    failed: list[list[str]] = []
    for r in parsed.rows:
        if is_url(r.url):
            entry = entries[r.url]
            if entry.status == "failed":
                failed.append([r.url, r.query, r.reference, entry.error])
                continue
            kept.append([f"images/{entry.path}", r.query, r.reference])
        else:
            local = r.image if r.image is not None else Path(r.url)
            with contextlib.suppress(ValueError):
                local = Path(os.path.relpath(local, out))
            kept.append([str(local), r.query, r.reference])
    return kept, failed
