"""Downloader against a real HTTP server on 127.0.0.1: success, retries, failures, resume, kill."""

import csv
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from data_helpers import write_table
from typer.testing import CliRunner

from panollava.cli import app
from panollava.data.download import DownloadOptions, download_table, remove_stale_parts
from panollava.data.quic360 import DataError, read_split, url_cache_name
from panollava.data.validate import validate_rows

FAST = DownloadOptions(workers=4, retries=2, backoff_s=0.01, timeout_s=0.5, max_bytes=1 << 20)
runner = CliRunner()


def _table(path: Path, urls: list[str]) -> Path:
    return write_table(path, [[u, "colors", f"caption {k}"] for k, u in enumerate(urls)])


def _manifest(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as fh:
        return {r["url"]: r for r in csv.DictReader(fh, delimiter="\t")}


def test_success_writes_images_manifest_and_local_table(server, tmp_path):
    urls = [server.url(f"/img/p{k}.jpg") for k in range(3)]
    table = write_table(
        tmp_path / "in.tsv",
        [[u, "colors", f"c{k}"] for k, u in enumerate(urls)]
        + [[urls[0], "shapes", "again"], ["local.jpg", "sky", "blue"]],
    )
    before = table.read_bytes()
    report = download_table(table, tmp_path / "out", opts=FAST)
    assert report.count("downloaded") == 3 and report.rows_kept == 5 and report.rows_failed == 0
    assert table.read_bytes() == before  # the input is never rewritten
    assert sum(server.counts.values()) == 3  # one request per distinct URL
    manifest = _manifest(report.manifest)
    for u in urls:
        local = tmp_path / "out" / "images" / url_cache_name(u)
        assert (
            manifest[u]["path"] == f"images/{local.name}" and manifest[u]["status"] == "downloaded"
        )
        assert manifest[u]["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
        assert int(manifest[u]["bytes"]) == local.stat().st_size
    rows = read_split([report.table])
    assert [r.url for r in rows[:4]] == [f"images/{url_cache_name(u)}" for u in [*urls, urls[0]]]
    assert rows[4].image.resolve() == (tmp_path / "local.jpg").resolve()
    assert validate_rows(rows[:4]).ok
    # the original table also resolves through the cache folder
    assert validate_rows(read_split([table], cache_dir=tmp_path / "out" / "images")).rows == 5


def test_retry_then_success(server, tmp_path):
    url = server.url("/flaky/2/a.jpg")
    report = download_table(_table(tmp_path / "t.tsv", [url]), tmp_path / "out", opts=FAST)
    (entry,) = report.entries
    assert entry.status == "downloaded" and entry.attempts == 3
    assert server.counts["/flaky/2/a.jpg"] == 3


@pytest.mark.parametrize(
    ("route", "requests", "error"),
    [
        ("/missing/a.jpg", 1, "HTTP 404"),
        ("/error/a.jpg", 3, "HTTP 500"),
        ("/html/a.jpg", 1, "not a readable image"),
        ("/big/a.jpg", 1, "limit"),
        ("/truncated/a.jpg", 3, "truncated"),
        ("/slow/a.jpg", 3, "timed out"),
    ],
)
def test_failures_are_reported_not_fatal(server, tmp_path, route, requests, error):
    urls = [server.url(route), server.url("/img/ok.jpg")]
    report = download_table(_table(tmp_path / "t.tsv", urls), tmp_path / "out", opts=FAST)
    bad = report.entries[0]
    assert bad.status == "failed" and error in bad.error and bad.attempts == requests
    assert server.counts[route] == requests  # permanent errors are not retried
    assert report.entries[1].status == "downloaded"
    assert report.rows_kept == 1 and report.rows_failed == 1
    failed = report.failed_table.read_text().splitlines()
    assert len(failed) == 2 and route in failed[1] and error in failed[1]
    images = tmp_path / "out" / "images"
    assert sorted(p.name for p in images.iterdir()) == [url_cache_name(urls[1])]  # no partials


def test_resume_skips_complete_files_and_refetches_broken_ones(server, tmp_path):
    urls = [server.url(f"/img/r{k}.jpg") for k in range(3)]
    table = _table(tmp_path / "t.tsv", urls)
    download_table(table, tmp_path / "out", opts=FAST)
    broken = tmp_path / "out" / "images" / url_cache_name(urls[1])
    broken.write_bytes(broken.read_bytes()[:100])  # e.g. damaged by hand
    stale = tmp_path / "out" / "images" / f"{url_cache_name(urls[2])}.999999999.part"
    stale.write_bytes(b"left by a killed run")
    report = download_table(table, tmp_path / "out", opts=FAST)
    assert [e.status for e in report.entries] == ["cached", "downloaded", "cached"]
    assert [server.counts[f"/img/r{k}.jpg"] for k in range(3)] == [1, 2, 1]
    assert not stale.exists()


def test_stale_parts_of_live_processes_are_kept(tmp_path):
    mine = tmp_path / f"a.jpg.{os.getpid()}.part"
    dead = tmp_path / "b.jpg.999999999.part"
    mine.write_bytes(b"x")
    dead.write_bytes(b"x")
    assert remove_stale_parts(tmp_path) == [dead] and mine.exists()


def test_output_never_overwrites_the_input(server, tmp_path):
    table = _table(tmp_path / "t.tsv", [server.url("/img/a.jpg")])
    with pytest.raises(DataError, match="overwrite the input"):
        download_table(table, tmp_path, opts=FAST)


def test_cli_download(server, tmp_path):
    table = _table(tmp_path / "t.tsv", [server.url("/img/a.jpg"), server.url("/missing/b.jpg")])
    result = runner.invoke(
        app, ["data", "download", str(table), "--out", str(tmp_path / "o"), "--backoff", "0.01"]
    )
    assert result.exit_code == 0, result.output  # dead links are reported, not fatal
    assert "dead" in result.output and "HTTP 404" in result.output
    assert (tmp_path / "o" / "t.tsv").is_file() and (tmp_path / "o" / "t.manifest.tsv").is_file()


@pytest.mark.slow
def test_resume_after_sigkill(server, tmp_path):
    """Kill a download subprocess mid-run; the rerun re-downloads no complete file and leaves
    no partial file behind."""
    server.drip_s = 0.15  # each /drip/ body takes ~3 s
    fast = [f"/img/k{k}.jpg" for k in range(4)]
    drips = [f"/drip/d{k}.jpg" for k in range(3)]
    table = _table(tmp_path / "t.tsv", [server.url(p) for p in fast + drips])
    images = tmp_path / "out" / "images"
    cmd = [sys.executable, "-m", "panollava.cli", "data", "download", str(table)]
    cmd += ["--out", str(tmp_path / "out"), "--workers", "2", "--timeout", "10"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            done = list(images.glob("*.jpg")) if images.is_dir() else []
            parts = list(images.glob("*.part")) if images.is_dir() else []
            if len(done) >= 4 and parts:
                break
            assert proc.poll() is None, "the download finished before it could be interrupted"
            time.sleep(0.05)
        else:
            pytest.fail("no partial download appeared in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert list(images.glob("*.part")), "the kill should leave a partial file"
    completed = {p.name for p in images.glob("*.jpg")}
    server.drip_s = 0.0
    report = download_table(table, tmp_path / "out", opts=FAST)
    status = {e.url.split(":", 2)[-1].split("/", 1)[1]: e.status for e in report.entries}
    for path in fast:
        assert server.counts[path] == 1 and status[path.lstrip("/")] == "cached"
    for e in report.entries:
        if e.path in completed:
            assert e.status == "cached"
    assert report.count("failed") == 0 and report.rows_kept == 7
    assert not list(images.glob("*.part"))
    assert validate_rows(read_split([report.table])).ok
