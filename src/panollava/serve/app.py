"""FastAPI app of the web demo. The model is any ``Answerer``: ``(viewset, query) -> answer``.

Endpoints: ``GET /`` the page; ``POST /api/panorama`` (multipart ``file``) decodes the ERP, builds
the views and returns ids, thumbnails and view metadata; ``POST /api/ask`` (``{"id", "query"}``)
returns the answer and the views that were used.
"""

from __future__ import annotations

import base64
import io
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import torch
from fastapi import FastAPI, File, HTTPException, UploadFile
from fastapi.responses import HTMLResponse
from PIL import Image
from pydantic import BaseModel

from panollava.data.images import ImageLoadError, load_erp
from panollava.data.schema import ImageConfig
from panollava.views import ViewSet, build_viewset, required_erp_width
from panollava.views.schema import ViewsConfig

__all__ = ["Answerer", "create_app"]

Answerer = Callable[[ViewSet, str], str]
STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD = 64 * 1024 * 1024
VIEWER_WIDTH = 2048


class AskRequest(BaseModel):
    id: str
    query: str


def _png(pixels: torch.Tensor, max_width: int | None = None) -> str:
    """``(3, H, W)`` in [0, 1] -> data URL of a PNG (optionally downscaled)."""
    img = Image.fromarray((pixels.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
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
) -> FastAPI:
    """The demo app answering with ``answer`` on views built by ``views`` (decoding per ``image``)."""
    image_cfg = image or ImageConfig()
    app = FastAPI(title=title)
    store: dict[str, tuple[torch.Tensor, ViewSet]] = {}

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
                erp = load_erp(tmp.name, cfg=image_cfg, min_width=required_erp_width(views))
                viewer = load_erp(tmp.name, cfg=image_cfg, min_width=VIEWER_WIDTH)
            except ImageLoadError as exc:
                raise HTTPException(
                    400, str(exc).replace(tmp.name, file.filename or "upload")
                ) from None
        viewset = build_viewset(erp, views)
        pano_id = uuid.uuid4().hex
        store[pano_id] = (erp, viewset)
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
            raise HTTPException(404, "unknown panorama id: upload the panorama first")
        if not req.query.strip():
            raise HTTPException(400, "empty query")
        _, viewset = store[req.id]
        text = answer(viewset, req.query.strip())
        return {"answer": text, "views_used": [v.index for v in viewset.views]}

    return app
