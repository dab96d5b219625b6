"""The LLM judge against hostile or unreachable endpoints."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from typer.testing import CliRunner

from panollava.cli import app
from panollava.evaluation.judge import JudgeConfig, JudgeItem, judge_items


class _Recorder(BaseHTTPRequestHandler):
    """Answers every request with 302 to ``server.redirect`` (if set), else records it."""

    def log_message(self, *args):
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.server.redirect:
            self.send_response(302)
            self.send_header("Location", self.server.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.seen.append(dict(self.headers))
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _handle


def _serve(redirect: str | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.redirect, server.seen = redirect, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _item() -> JudgeItem:
    return JudgeItem("run", "1", "a.jpg", "q", ["a cat"], "a cat")


def test_api_key_is_not_forwarded_on_a_redirect_to_another_origin(tmp_path):
    other = _serve()  # another port: another origin
    api = _serve(redirect=f"http://127.0.0.1:{other.server_address[1]}/steal")
    try:
        cfg = JudgeConfig(
            base_url=f"http://127.0.0.1:{api.server_address[1]}/v1",
            model="m",
            api_key="sk-secret",
            max_retries=0,
        )
        judge_items([_item()], cfg, tmp_path / "j.jsonl", sleep=lambda s: None)
    finally:
        api.shutdown()
        other.shutdown()
    assert other.seen, "the redirect was not followed at all"
    assert all("sk-secret" not in json.dumps(h) for h in other.seen)


def test_judge_with_an_unreachable_endpoint_exits_1_and_keeps_what_it_wrote(tmp_path):
    """It used to exit 0 with every item failed."""
    preds = tmp_path / "p.csv"
    preds.write_text("url,query,prediction,reference\na.jpg,q,a cat,a cat\n", encoding="utf-8")
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "judge.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "judge",
            str(preds),
            "--base-url",
            f"http://127.0.0.1:{port}/v1",
            "--model",
            "m",
            "--out",
            str(out),
            "--max-retries",
            "0",
            "--timeout",
            "2",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "failed" in result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and all(r["status"] == "failed" for r in records)
