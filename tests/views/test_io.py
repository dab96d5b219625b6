"""views.json written by ``save_viewset`` describes the pixels that were written."""

import json

import torch
from PIL import Image

from panollava.views import build_viewset
from panollava.views.io import save_viewset
from panollava.views.schema import ViewsConfig


def test_native_views_json_gives_the_erp_size(tmp_path):
    erp = torch.rand(3, 64, 128)
    vs = build_viewset(erp, ViewsConfig(strategy="native"))  # tile_size (256) plays no part
    meta = json.loads(save_viewset(vs, tmp_path).read_text())
    (view,) = meta["views"]
    assert (view["height"], view["width"]) == (64, 128)  # was 256x256
    assert Image.open(tmp_path / view["file"]).size == (128, 64)


def test_tiled_views_json_sizes_match_the_files(tmp_path):
    vs = build_viewset(torch.rand(3, 64, 128), ViewsConfig(tile_size=32))
    meta = json.loads(save_viewset(vs, tmp_path).read_text())
    for view in meta["views"]:
        assert Image.open(tmp_path / view["file"]).size == (view["width"], view["height"])
