"""One image-root convention: ``panollava data download TABLE --out data/quic360`` writes the
images where every real-data recipe looks for them (``data.cache_dir: data/quic360/images``), so
the published tables resolve their Flickr URLs to the downloaded files unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from loopback_server import LoopbackServer

from panollava.config import load_config
from panollava.data.download import download_table
from panollava.data.quic360 import read_annotations

REPO = Path(__file__).resolve().parents[2]
RECIPES = [
    *sorted((REPO / "configs" / "panoadapt").glob("*.yaml")),
    REPO / "configs" / "panollava" / "default.yaml",
]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_real_data_recipes_read_images_from_the_download_folder(recipe: Path) -> None:
    cfg = load_config(recipe)
    assert cfg.data.cache_dir == REPO / "data" / "quic360" / "images"


def test_download_out_folder_serves_the_original_table_through_cache_dir(tmp_path: Path) -> None:
    with LoopbackServer() as server:
        table = tmp_path / "test.tsv"
        urls = [server.url(f"/img/pano{k}.jpg") for k in range(2)]
        table.write_text(
            "url\tquery\tannotation\n" + "".join(f"{u}\twhat?\ta door\n" for u in urls)
        )
        download_table(table, tmp_path / "data" / "quic360")
    rows = read_annotations(table, cache_dir=tmp_path / "data" / "quic360" / "images").rows
    assert [r.image.is_file() for r in rows] == [True, True]
