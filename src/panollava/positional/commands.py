"""``panollava positions``: the position every image token receives under PanoRoPE."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from panollava.views.schema import Strategy, ViewsConfig

__all__ = ["register"]


def positions_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path(
        "positions.png"
    ),
    strategy: Annotated[Strategy, typer.Option(help="View strategy.")] = "anyres_e2p",
    fov: Annotated[float, typer.Option(help="Tile FoV, degrees.")] = 90.0,
    overlap: Annotated[float, typer.Option(help="Tile overlap, 0..1.")] = 0.5,
    grid: Annotated[int, typer.Option(help="Tokens per view side.")] = 16,
    kind: Annotated[
        Literal["mrope", "1d"], typer.Option(help="mrope (Qwen) or 1d (InternVL, Gemma3).")
    ] = "mrope",
) -> None:
    """Plot the position each image token receives under PanoRoPE, view by view."""
    from panollava.positional.figure import plot_positions  # deferred: matplotlib + torch
    from panollava.views import make_layout

    layout = make_layout(ViewsConfig(strategy=strategy, fov_deg=fov, overlap=overlap))
    path = plot_positions(layout, (grid, grid), out, kind=kind)
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.command("positions")(positions_command)
