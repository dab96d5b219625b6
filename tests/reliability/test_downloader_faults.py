"""The downloader against a hostile server (loopback) and hostile options."""

from __future__ import annotations

import threading

import pytest
from loopback_server import LoopbackServer
from typer.testing import CliRunner

from panollava.cli import app
from panollava.data.download import DownloadOptions, download_url
from panollava.data.quic360 import DataError, read_annotations


def test_one_byte_per_second_server_is_cut_off_at_the_deadline(tmp_path):
    """The deadline used to be checked only between 64 KiB reads: a slow drip ran forever."""
    opts = DownloadOptions(retries=0, timeout_s=5.0, deadline_s=1.0)
    result = {}
    with LoopbackServer(trickle_s=0.1) as srv:
        worker = threading.Thread(
            target=lambda: result.update(
                entry=download_url(srv.url("/trickle/a.jpg"), tmp_path / "a.jpg", opts)
            ),
            daemon=True,
        )
        worker.start()
        worker.join(timeout=30)  # a bound on a hang, not a speed target
        assert not worker.is_alive(), "the download outlived its 1 s deadline by 30 s"
    entry = result["entry"]
    assert entry.status == "failed" and "deadline" in entry.error
    assert not (tmp_path / "a.jpg").exists()


@pytest.mark.parametrize("url", ["ftp://example.org/p.jpg", "s3://bucket/p.jpg"])
def test_non_http_urls_are_refused_not_taken_as_local_paths(tmp_path, url):
    table = tmp_path / "t.tsv"
    table.write_text(f"url\tquery\tannotation\n{url}\tq\ta\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"t\.tsv: row 1 \(line 2\): unsupported URL scheme"):
        read_annotations(table)
    result = CliRunner().invoke(app, ["data", "download", str(table), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "unsupported URL scheme" in result.output, result.output


@pytest.mark.parametrize(
    "option", [["--timeout", "0"], ["--max-mb", "0"], ["--timeout", "-1"], ["--deadline", "0"]]
)
def test_download_options_that_would_fail_every_url_exit_2(tmp_path, option):
    """`--timeout 0`/`--max-mb 0` used to mark every URL dead and exit 0; -1 was a traceback."""
    table = tmp_path / "t.tsv"
    table.write_text("url\tquery\tannotation\nhttp://127.0.0.1:9/a.jpg\tq\ta\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["data", "download", str(table), "--out", str(tmp_path / "o"), *option]
    )
    assert result.exit_code == 2, result.output
    assert "must be positive" in result.output
    assert not (tmp_path / "o").exists()
