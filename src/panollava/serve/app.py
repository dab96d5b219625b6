"""FastAPI app of the web demo. The model is any ``Answerer``: ``(viewset, query) -> answer``.

Endpoints: ``GET /`` the page; ``POST /api/panorama`` (multipart ``file``) decodes the ERP, builds
the views and returns ids, thumbnails and view metadata; ``POST /api/ask`` (``{"id", "query"}``)
returns the answer and the views that were used.

Limits (a local demo still meets hostile browsers and clients):

* request bodies over the limit (``MAX_UPLOAD`` for a panorama, ``MAX_JSON`` otherwise) are
  refused with 413 from ``Content-Length`` before a byte is read, and while streaming when the
  length is not declared or lies — never written to disk first;
* only requests whose ``Host`` is one of ``allowed_hosts`` (loopback names by default) are
  served, and a POST from a page of another origin (``Origin``) is refused with 403 (DNS
  rebinding and cross-site requests);
* the panoramas kept for questions are the ``max_panoramas`` most recently used (LRU); an
  evicted id answers 404 "upload it again";
* a query longer than ``max_query_chars`` or one the model's prompt cannot hold is a 413/422,
  and query text never goes to the log.
"""

from __future__ import annotations

import base64
import io
import logging
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection
from pathlib import Path
from urllib.parse import urlsplit

import torch
from fastapi import FastAPI, File, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image
from pydantic import BaseModel

from panollava.data.images import ImageLoadError, load_erp, load_views
from panollava.data.schema import ImageConfig
from panollava.views import ViewSet, unit_uint8
from panollava.views.schema import ViewsConfig

__all__ = ["LOOPBACK_HOSTS", "Answerer", "create_app"]

log = logging.getLogger(__name__)

Answerer = Callable[[ViewSet, str], str]
STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD = 64 * 1024 * 1024
MAX_JSON = 64 * 1024  # /api/ask bodies: an id and a query
_MULTIPART_SLACK = 64 * 1024  # multipart headers and boundaries around the file
VIEWER_WIDTH = 2048
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class _Guard:
    """ASGI middleware: Host/Origin checks and body-size limits (see the module docstring)."""

    def __init__(self, app, *, hosts: Collection[str], upload_path: str) -> None:
        self.app, self.hosts, self.upload_path = app, {h.lower() for h in hosts}, upload_path

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = urlsplit("//" + headers.get("host", "")).hostname or ""
        if host.lower() not in self.hosts:
            return await _refuse(send, 403, f"host {host!r} is not served here")
        origin = headers.get("origin")
        foreign = origin is not None and (urlsplit(origin).hostname or "").lower() not in self.hosts
        if foreign and scope["method"] not in ("GET", "HEAD"):
            return await _refuse(send, 403, "cross-origin requests are refused")
        limit = MAX_UPLOAD + _MULTIPART_SLACK if scope["path"] == self.upload_path else MAX_JSON
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await _refuse(send, 413, f"request body larger than {limit:,} bytes")
        seen, refused = 0, False

        async def bounded():
            # Past the limit: answer 413 now and tell the app the client left (FastAPI turns
            # exceptions raised here into a 400, so the refusal cannot be an exception).
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                refused = True
                await _refuse(send, 413, f"request body larger than {limit:,} bytes")
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message) -> None:
            if not refused:  # the app's own answer after a refusal is dropped
                await send(message)

        await self.app(scope, bounded, guarded_send)


async def _refuse(send, status: int, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status_code=status)
    await response({"type": "http"}, None, send)


class AskRequest(BaseModel):
    id: str
    query: str


def _png(pixels: torch.Tensor, max_width: int | None = None) -> str:
    """``(3, H, W)`` uint8 or float in [0, 1] -> data URL of a PNG (optionally downscaled)."""
    img = Image.fromarray(unit_uint8(pixels).permute(1, 2, 0).cpu().numpy())
    if max_width and img.width > max_width:
        img = img.resize(
            (max_width, round(img.height * max_width / img.width)), Image.Resampling.BILINEAR
        )
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def create_app(
    answer: Answerer,
    views: ViewsConfig,
    *,
    image: ImageConfig | None = None,
    title: str = "panollava",
    allowed_hosts: Collection[str] = LOOPBACK_HOSTS,
    max_panoramas: int = 16,
    max_query_chars: int = 500,
) -> FastAPI:
    """The demo app answering with ``answer`` on views built by ``views`` (decoding per ``image``).

    ``allowed_hosts``: host names the app answers to (add the name you serve it under when
    binding beyond loopback); ``max_panoramas``: uploads kept for questions (LRU);
    ``max_query_chars``: longest query accepted.
    """
    if max_panoramas < 1:
        raise ValueError(f"max_panoramas must be >= 1, got {max_panoramas}")
    image_cfg = image or ImageConfig()
    app = FastAPI(title=title)
    app.add_middleware(_Guard, hosts=allowed_hosts, upload_path="/api/panorama")
    store: OrderedDict[str, ViewSet] = OrderedDict()  # LRU: most recently used last
    app.state.panoramas = store

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return (STATIC / "index.html").read_text(encoding="utf-8").replace("{{TITLE}}", title)

    @app.post("/api/panorama")
    async def panorama(file: UploadFile = File(...)) -> dict:
        data = await file.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise HTTPException(413, f"file larger than {MAX_UPLOAD // 2**20} MiB")
        suffix = Path(file.filename or "upload.jpg").suffix or ".jpg"
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            tmp.write(data)
            tmp.flush()
            try:
                # The views from exactly the decode training and `infer` use; a sharper decode
                # only for the 360° viewer on the page.
                _, viewset = load_views(tmp.name, views, cfg=image_cfg)
                viewer = load_erp(tmp.name, cfg=image_cfg, min_width=VIEWER_WIDTH)
            except ImageLoadError as exc:
                raise HTTPException(
                    400, str(exc).replace(tmp.name, file.filename or "upload")
                ) from None
        pano_id = uuid.uuid4().hex
        store[pano_id] = viewset
        while len(store) > max_panoramas:
            store.popitem(last=False)
        return {
            "id": pano_id,
            "erp": _png(viewer, VIEWER_WIDTH),
            "views": [
                {**v.to_json(), "image": _png(p)}
                for v, p in zip(viewset.views, viewset.pixels, strict=True)
            ],
            "layout": {
                "strategy": viewset.layout.strategy,
                "ring_overlap": viewset.layout.ring_overlap,
            },
        }

    @app.post("/api/ask")
    def ask(req: AskRequest) -> dict:
        if req.id not in store:
            raise HTTPException(404, "unknown or expired panorama id: upload the panorama (again)")
        query = req.query.strip()
        if not query:
            raise HTTPException(400, "empty query")
        if len(query) > max_query_chars:
            raise HTTPException(413, f"query longer than {max_query_chars} characters")
        store.move_to_end(req.id)
        viewset = store[req.id]
        try:
            text = answer(viewset, query)
        except ValueError:  # the prompt does not fit the model; the message may quote it
            log.warning("a query of %d characters was refused by the model", len(query))
            raise HTTPException(
                422, "the query does not fit the model's prompt: shorten it"
            ) from None
        return {"answer": text, "views_used": [v.index for v in viewset.views]}

    return app
