"""``panollava positions``: the positions PanoRoPE gives every image token, as a figure and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

import typer

from panollava.cli_support import console, fail, load_config_or_fail, user_errors
from panollava.views.schema import Strategy

__all__ = ["positions_command", "register"]


def positions_command(
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="Dotted overrides KEY=VALUE, e.g. views.vfov_deg=60.", show_default=False
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG figure to write.")] = Path(
        "positions.png"
    ),
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write, per view, the (t, h, w) or 1-D position grid."),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML config whose views to use.")] = None,
    strategy: Annotated[
        Strategy | None, typer.Option(help="View strategy (default anyres_e2p).")
    ] = None,
    fov: Annotated[float | None, typer.Option(help="Tile FoV, degrees.")] = None,
    overlap: Annotated[float | None, typer.Option(help="Tile overlap, 0..1.")] = None,
    pitch: Annotated[list[float] | None, typer.Option(help="Ring pitch(es), repeatable.")] = None,
    grid: Annotated[int, typer.Option(min=1, help="Tokens per view side.")] = 16,
    kind: Annotated[
        Literal["mrope", "1d"], typer.Option(help="mrope (Qwen) or 1d (InternVL, Gemma3).")
    ] = "mrope",
) -> None:
    """Plot (and with --json, list) the position each image token receives under PanoRoPE."""
    from panollava.positional.figure import plot_positions  # deferred: matplotlib + torch
    from panollava.positional.panorope import check_panorope_layout, position_grids
    from panollava.views import make_layout

    flags = {"strategy": strategy, "fov_deg": fov, "overlap": overlap, "pitch_deg": pitch}
    flag_overrides = [f"views.{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    bad = [o for o in overrides or [] if not o.startswith("views.")]
    if bad:
        fail(f"positions takes views.* overrides only, got {bad}")
    cfg = load_config_or_fail(config, [*flag_overrides, *(overrides or [])])
    layout = make_layout(cfg.views)
    with user_errors(ValueError):
        check_panorope_layout(layout)
    path = plot_positions(layout, (grid, grid), out, kind=kind)
    console.print(f"figure -> {path}", highlight=False)
    if json_out is not None:
        record = position_grids(layout, (grid, grid), kind)
        json_out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(record, indent=1)
        text = re.sub(r"\[\s+([-\d.,\se]+?)\s+\]", lambda m: f"[{' '.join(m[1].split())}]", text)
        json_out.write_text(text, encoding="utf-8")  # one line per grid row
        console.print(f"positions -> {json_out}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("positions")(positions_command)
