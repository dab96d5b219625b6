"""The web demo's 360° viewer shows the panorama in the same (colour-managed) colours as the views.

``img_02.jpg`` is Adobe RGB (1998): the viewer image and the view thumbnails must both be its
sRGB conversion. The viewer's own JavaScript renderer (``static/index.html``) is run in Node on
the served image and must reproduce our sampler's pixels (no channel swap, no offset).
"""

import base64
import io
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image, ImageCms

from panollava.geometry import ViewGeometry, sample_views
from panollava.serve.app import STATIC, create_app
from panollava.views.schema import ViewsConfig


def _decode(url: str) -> np.ndarray:
    """A served data URL -> ``(H, W, 3)`` uint8."""
    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(scope="module")
def served(sample_images) -> dict:
    path = sample_images[1]  # img_02.jpg, Adobe RGB (1998)
    client = TestClient(
        create_app(lambda views, query: "ok", ViewsConfig()), base_url="http://127.0.0.1:8000"
    )
    res = client.post("/api/panorama", files={"file": (path.name, path.read_bytes(), "image/jpeg")})
    assert res.status_code == 200, res.text
    return {"path": path, **res.json()}


def _managed_means(path: Path) -> np.ndarray:
    img = Image.open(path)
    img.draft("RGB", (1024, 512))
    srgb = ImageCms.profileToProfile(
        img,
        io.BytesIO(img.info["icc_profile"]),
        ImageCms.createProfile("sRGB"),
        outputMode="RGB",
    )
    return np.asarray(srgb).reshape(-1, 3).mean(0)


def test_viewer_image_is_colour_managed_like_the_views(served):
    erp = _decode(served["erp"])
    ref = _managed_means(served["path"])
    # The whole-panorama viewer image: per-channel means of the sRGB conversion.
    assert np.abs(erp.reshape(-1, 3).mean(0) - ref).max() < 1.0  # unmanaged: off by 3-4
    # Each tile thumbnail has the viewer image's colours at the same place.
    src = torch.from_numpy(erp.copy()).permute(2, 0, 1)[None].float()
    for view in served["views"][1:]:
        geom = ViewGeometry("gnomonic", view["yaw_deg"], view["pitch_deg"], 90.0, 90.0)
        ours = sample_views(src, [geom], (256, 256))[0, 0].permute(1, 2, 0).numpy()
        thumb = _decode(view["image"]).astype(np.float64)
        shift = (thumb - ours).reshape(-1, 3).mean(0)
        assert np.abs(shift).max() < 1.0, (view["yaw_deg"], shift)


def _render_js(erp: np.ndarray, tmp: Path, size=(360, 720)) -> np.ndarray:
    """Run the page's ``render()`` in Node on ``erp`` ``(H, W, 3)`` -> canvas ``(h, w, 3)``."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    render = re.search(r"function render\(\) \{.*?\n\}\n", html, re.S).group(0)
    rgba = np.concatenate((erp, np.full((*erp.shape[:2], 1), 255, np.uint8)), -1)
    (tmp / "erp.raw").write_bytes(rgba.tobytes())
    script = f"""
const fs = require("fs");
let erp = {{width: {erp.shape[1]}, height: {erp.shape[0]},
           data: new Uint8ClampedArray(fs.readFileSync("{tmp / "erp.raw"}"))}};
let yaw = 0.3, pitch = -0.2, result = null;
const canvas = {{width: {size[1]}, height: {size[0]}}};
const ctx = {{createImageData: (w, h) => ({{width: w, height: h, data: new Uint8ClampedArray(w * h * 4)}}),
             putImageData: (img) => {{ result = img; }}}};
const document = {{getElementById: () => ({{}})}};
{render}
render();
fs.writeFileSync("{tmp / "out.raw"}", Buffer.from(result.data.buffer));
"""
    (tmp / "render.js").write_text(script)
    subprocess.run([shutil.which("node"), str(tmp / "render.js")], check=True, timeout=120)
    out = np.frombuffer((tmp / "out.raw").read_bytes(), np.uint8)
    return out.reshape(size[0], size[1], 4)[..., :3]


def test_viewer_javascript_renders_the_served_colours(served, tmp_path):
    if shutil.which("node") is None:
        pytest.skip("node is not installed (apt-get install nodejs)")
    erp = _decode(served["erp"])
    canvas = _render_js(erp, tmp_path).astype(np.float64)
    # The page's camera: 90° across a 720x360 canvas (pixel edges span the FoV), yaw 0.3 rad
    # right, pitch 0.2 rad down, nearest-pixel lookup.
    t = math.tan(math.radians(45))
    hfov = 2 * math.degrees(math.atan(t * 719 / 720))
    vfov = 2 * math.degrees(math.atan(t * 0.5 * 359 / 360))
    geom = ViewGeometry("gnomonic", math.degrees(0.3), -math.degrees(0.2), hfov, vfov)
    src = torch.from_numpy(erp.copy()).permute(2, 0, 1)[None].float()
    ours = sample_views(src, [geom], (360, 720), "nearest", antialias=False)[0, 0]
    ours = ours.permute(1, 2, 0).numpy()
    assert np.abs(canvas.reshape(-1, 3).mean(0) - ours.reshape(-1, 3).mean(0)).max() < 0.5
    assert (np.abs(canvas - ours).max(-1) > 0).mean() < 0.01  # nearest ties at pixel edges only
