"""A real HTTP server on 127.0.0.1 (ephemeral port) serving generated JPEGs and failures.

Routes (``<name>`` is any file name; bodies depend only on the name):

* ``/img/<name>``              200, a 2:1 JPEG
* ``/missing/<name>``          404
* ``/error/<name>``            500, always
* ``/flaky/<k>/<name>``        500 for the first ``k`` requests of that path, then the JPEG
* ``/slow/<name>``             sleeps ``slow_s`` before answering (clients time out)
* ``/truncated/<name>``        announces the full length, sends half, closes
* ``/html/<name>``             200 with an HTML body (not an image)
* ``/big/<name>``              announces 50 MB
* ``/drip/<name>``             the JPEG in small pieces, ``drip_s`` apart (for kill tests)
* ``/trickle/<name>``          the JPEG one byte at a time, ``trickle_s`` apart (deadline tests)

Every request is counted per path; the server refuses (503) beyond ``max_requests`` so a
runaway client cannot hammer it.
"""

from __future__ import annotations

import hashlib
import io
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image


def make_jpeg(name: str, width: int = 128) -> bytes:
    """A deterministic 2:1 JPEG whose colours depend on ``name``."""
    seed = int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=3)
    ramp = np.linspace(0, 1, width)[None, :, None]
    arr = (base * (0.5 + 0.5 * ramp) + np.zeros((width // 2, 1, 1))).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Clients that time out or get killed break the pipe: expected here, not an error."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Start with ``with LoopbackServer() as srv: srv.url("/img/a.jpg")``."""

    def __init__(
        self,
        *,
        slow_s: float = 2.0,
        drip_s: float = 0.0,
        trickle_s: float = 0.2,
        max_requests: int = 400,
    ):
        self.slow_s, self.drip_s, self.max_requests = slow_s, drip_s, max_requests
        self.trickle_s = trickle_s
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def total(self) -> int:
        return sum(self.counts.values())

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, ctype: str = "image/jpeg") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path
                with server.lock:
                    server.counts[path] += 1
                    count = server.counts[path]
                    over = server.total() > server.max_requests
                if over:
                    return self._send(503, b"too many requests in this test", "text/plain")
                kind, _, rest = path.strip("/").partition("/")
                name = rest.rsplit("/", 1)[-1]
                if kind == "img":
                    return self._send(200, make_jpeg(name))
                if kind == "missing":
                    return self._send(404, b"not found", "text/plain")
                if kind == "error":
                    return self._send(500, b"server error", "text/plain")
                if kind == "flaky":
                    k = int(rest.split("/", 1)[0])
                    if count <= k:
                        return self._send(500, b"try again", "text/plain")
                    return self._send(200, make_jpeg(name))
                if kind == "slow":
                    time.sleep(server.slow_s)
                    return self._send(200, make_jpeg(name))
                if kind == "html":
                    return self._send(200, b"<html><body>photo removed</body></html>", "text/html")
                if kind in ("truncated", "big", "drip", "trickle"):
                    return self._partial(kind, name)
                return self._send(404, b"unknown route", "text/plain")

            def _partial(self, kind: str, name: str) -> None:
                body = make_jpeg(name, width=512 if kind == "drip" else 128)
                length = 50_000_000 if kind == "big" else len(body)
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if kind == "truncated":
                    self.wfile.write(body[: len(body) // 2])
                elif kind == "trickle":
                    for i in range(len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(server.trickle_s)
                elif kind == "drip":
                    step = max(1, len(body) // 20)
                    for i in range(0, len(body), step):
                        self.wfile.write(body[i : i + step])
                        self.wfile.flush()
                        time.sleep(server.drip_s)
                self.close_connection = True

        return Handler
