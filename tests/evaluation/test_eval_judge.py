"""LLM judge against a small OpenAI-compatible server on 127.0.0.1 (loopback only, bounded)."""

from __future__ import annotations

import csv
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from panollava.cli import app
from panollava.evaluation.judge import (
    CRITERIA,
    JudgeConfig,
    JudgeParseError,
    items_from_files,
    judge_items,
    judge_score,
    parse_judge_reply,
)

MAX_REQUESTS = 60


class _FakeJudge(BaseHTTPRequestHandler):
    """Scores from the candidate text; ``MALFORMED`` never gets JSON, ``FLAKY`` first gets a 500,
    ``FENCED`` gets its JSON in a ```json fence."""

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        server = self.server
        with server.lock:
            server.count += 1
            count = server.count
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if count > MAX_REQUESTS or self.path != "/v1/chat/completions":
            self._send(503, {"error": "request budget exhausted or wrong path"})
            return
        user = body["messages"][1]["content"]
        text = next(part["text"] for part in user if part["type"] == "text")
        candidate = text.split("Candidate caption:\n", 1)[1].split("\n", 1)[0]
        with server.lock:
            server.requests.append({"candidate": candidate, "body": body})
            flaky_seen = candidate in server.flaky_seen
            server.flaky_seen.add(candidate)
        if "FLAKY" in candidate and not flaky_seen:
            self._send(500, {"error": "temporary"})
            return
        scores = {k: 1 + (len(candidate) + i) % 5 for i, k in enumerate(CRITERIA)}
        content = json.dumps(scores | {"rationale": "ok"})
        if "MALFORMED" in candidate:
            content = "I would rate this caption 4 out of 5 overall."
        elif "FENCED" in candidate:
            content = f"```json\n{content}\n```"
        reply = {
            "choices": [{"message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20},
        }
        self._send(200, reply)

    def _send(self, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def judge_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeJudge)
    server.count, server.requests, server.flaky_seen = 0, [], set()
    server.lock = threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_strict_parsing():
    good = {"spatial": 3, "query_relevance": 4, "factual": 2, "completeness": 5, "fluency": 1}
    assert parse_judge_reply(json.dumps(good)) == good
    assert parse_judge_reply("```json\n" + json.dumps(good | {"rationale": "x"}) + "\n```") == good
    bad = [
        "4/5",
        json.dumps([good]),
        json.dumps(good | {"spatial": 6}),
        json.dumps(good | {"spatial": 3.5}),
        json.dumps(good | {"spatial": True}),
        json.dumps(good | {"overall": 4}),
        json.dumps({k: v for k, v in good.items() if k != "fluency"}),
        "Sure! " + json.dumps(good),
        "```json\n" + json.dumps(good),
    ]
    for reply in bad:
        with pytest.raises(JudgeParseError):
            parse_judge_reply(reply)


def test_weights_reproduce_the_shared_judge_column(shared_files):
    with shared_files["predictions"].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24
    for row in rows:
        score = judge_score({k: int(row[k]) for k in CRITERIA})
        assert score == pytest.approx(float(row["judge"]))
    assert judge_score(dict.fromkeys(CRITERIA, 1)) == pytest.approx(20)
    assert judge_score(dict.fromkeys(CRITERIA, 5)) == pytest.approx(100)


def test_judge_retries_records_failures_and_resumes(judge_server, shared_files, tmp_path):
    server, base_url = judge_server
    preds = tmp_path / "p.csv"
    rows = [
        ["img_01.jpg", "small objects", "Some small stones.", "stones are arranged"],
        ["img_02.jpg", "cars", "FLAKY an old car.", "an old car in a barn"],
        ["img_03.jpg", "people", "MALFORMED people talk.", "people talking"],
        ["img_04.jpg", "monuments", "FENCED a wooden monument.", "a wooden monument"],
    ]
    with preds.open("w", newline="") as fh:
        csv.writer(fh).writerows([["url", "query", "prediction", "reference"], *rows])
    items = items_from_files(preds, images=shared_files["samples"].parent)
    assert all(it.image is not None for it in items)
    cfg = JudgeConfig(
        base_url=base_url,
        model="fake-judge",
        concurrency=2,
        max_retries=2,
        price_in_per_mtok=1.0,
        price_out_per_mtok=2.0,
    )
    out = tmp_path / "judge.jsonl"
    summary = judge_items(items, cfg, out, sleep=lambda s: None)
    records = {json.loads(line)["url"]: json.loads(line) for line in out.read_text().splitlines()}
    assert records["img_01.jpg"]["status"] == "ok" and records["img_01.jpg"]["attempts"] == 1
    assert records["img_02.jpg"]["status"] == "ok" and records["img_02.jpg"]["attempts"] == 2
    assert records["img_04.jpg"]["status"] == "ok"
    failed = records["img_03.jpg"]
    assert failed["status"] == "failed" and failed["attempts"] == 3
    assert "judge" not in failed and "scores" not in failed  # never a default score
    assert failed["raw_reply"].startswith("I would rate") and "unparsable" in failed["error"]
    assert failed["usage"] == {"prompt_tokens": 300, "completion_tokens": 60}
    ok = records["img_01.jpg"]
    assert ok["judge"] == pytest.approx(judge_score(ok["scores"]))
    assert ok["cost_usd"] == pytest.approx((100 * 1.0 + 20 * 2.0) / 1e6)
    run = summary["runs"]["p"]
    assert (
        run["ok"] == 3 and run["failed"] == 1 and run["prompt_tokens"] == 100 * 6
    )  # 3 ok + 3 failed attempts
    first = server.requests[0]["body"]
    image_part = first["messages"][1]["content"][0]
    assert image_part["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert first["model"] == "fake-judge" and first["temperature"] == 0.0
    # resume: only the failed item is asked again
    before = server.count
    again = judge_items(items, cfg, out, sleep=lambda s: None)
    assert again["skipped_already_done"] == 3 and server.count - before == 3
    assert again["runs"]["p"]["failed"] == 1


def test_judge_cli_on_shared_predictions(judge_server, shared_files, tmp_path):
    server, base_url = judge_server
    out = tmp_path / "judge.jsonl"
    args = [
        "judge",
        str(shared_files["predictions"]),
        "--references",
        str(shared_files["samples"]),
        "--images",
        str(shared_files["samples"].parent),
        "--base-url",
        base_url,
        "--model",
        "fake-judge",
        "--out",
        str(out),
        "--concurrency",
        "3",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert server.count == 24 and len(out.read_text().splitlines()) == 24
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert set(summary["runs"]) == {"Resize", "Native", "DenseCL", "VICReg-pw"}
    assert all(20 <= r["judge"] <= 100 and r["failed"] == 0 for r in summary["runs"].values())
    assert "| Resize |" in result.output


def test_missing_images_are_an_error(shared_files, tmp_path):
    from panollava.evaluation.tables import TableError

    with pytest.raises(TableError, match=r"img_01\.jpg"):
        items_from_files(shared_files["predictions"], shared_files["samples"], images=tmp_path)
