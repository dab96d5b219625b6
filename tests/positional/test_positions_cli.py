"""``panollava positions``: the figure, and a JSON of exactly the positions the LLM receives."""

import json

import pytest
import torch
from typer.testing import CliRunner

from panollava.cli import app
from panollava.positional import panorope_positions
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig

IMG = 7


def _sequence_blocks(layout, grid, kind):
    """Positions of a synthetic sequence (text, views separated by a marker, text) per view,
    minus the origin the module docstring promises: tiles share the first tile's, the global
    view has its own (first position after the preceding text token)."""
    n = grid[0] * grid[1]
    parts = [torch.tensor([1, 2, 3])]
    for _ in layout.views:
        parts += [torch.full((n,), IMG), torch.tensor([4])]
    ids = torch.cat([*parts, torch.tensor([5])])[None]
    pos = panorope_positions(
        ids, torch.ones_like(ids), layout, image_token_id=IMG, grid=grid, kind=kind
    ).double()
    pos = pos[:, 0] if kind == "mrope" else pos[0][None]
    out, tile_origin = {}, None
    for k, v in enumerate(layout.views):
        start = 3 + k * (n + 1)
        origin = float(pos[0, start - 1]) + 1.0
        if v.kind == "tile":
            tile_origin = origin if tile_origin is None else tile_origin
            origin = tile_origin
        out[v.index] = pos[:, start : start + n].reshape(-1, *grid) - origin
    return out


@pytest.mark.parametrize(
    ("args", "views", "kind"),
    [
        ([], ViewsConfig(), "mrope"),
        (["--pitch", "-30", "--pitch", "30"], ViewsConfig(pitch_deg=[-30, 30]), "1d"),
        (["--strategy", "anyres"], ViewsConfig(strategy="anyres"), "mrope"),
    ],
)
def test_positions_json_is_what_the_llm_receives(tmp_path, args, views, kind):
    grid = (4, 4)
    out, js = str(tmp_path / "p.png"), str(tmp_path / "p.json")
    cmd = ["positions", "--out", out, "--json", js, "--grid", "4", "--kind", kind, *args]
    res = CliRunner().invoke(app, cmd)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p.png").stat().st_size > 10_000
    record = json.loads((tmp_path / "p.json").read_text())
    layout = make_layout(views)
    assert record["kind"] == kind and record["grid"] == [4, 4]
    assert [v["index"] for v in record["views"]] == list(range(len(layout)))
    expected = _sequence_blocks(layout, grid, kind)
    names = ("t", "h", "w") if kind == "mrope" else ("pos",)
    for entry in record["views"]:
        got = torch.tensor([entry[n] for n in names], dtype=torch.float64)  # (3|1, gh, gw)
        assert got.shape == (len(names), *grid)
        assert torch.allclose(got, expected[entry["index"]], atol=1e-3), entry["index"]
        assert entry["origin"] == ("tiles" if entry["kind"] == "tile" else "own")
    if len(layout.tiles) > 2:
        assert record["cut"]["between_views"] == [layout.tiles[-1].index, layout.tiles[0].index]


def test_positions_refuses_a_layout_through_the_pole(tmp_path):
    res = CliRunner().invoke(
        app, ["positions", "--out", str(tmp_path / "p.png"), "--pitch", "60", "--grid", "4"]
    )
    assert res.exit_code == 2
    assert "pole" in res.output
    res = CliRunner().invoke(app, ["positions", "--kind", "2d"])
    assert res.exit_code == 2 and "mrope" in res.output
