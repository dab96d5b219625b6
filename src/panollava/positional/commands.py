"""``panollava positions``: the positions PanoRoPE gives every image token, as a figure and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["positions_command", "register"]


def positions_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG figure to write.")] = Path(
        "positions.png"
    ),
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write, per view, the (t, h, w) or 1-D position grid."),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML config whose views to use.")] = None,
    strategy: Annotated[str | None, typer.Option(help="View strategy.")] = None,
    fov: Annotated[float | None, typer.Option(help="Tile FoV, degrees.")] = None,
    overlap: Annotated[float | None, typer.Option(help="Tile overlap, 0..1.")] = None,
    pitch: Annotated[list[float] | None, typer.Option(help="Ring pitch(es), repeatable.")] = None,
    grid: Annotated[int, typer.Option(help="Tokens per view side.")] = 16,
    kind: Annotated[str, typer.Option(help="mrope (Qwen) or 1d (InternVL, Gemma3).")] = "mrope",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Extra dotted overrides, e.g. views.vfov_deg=60"),
    ] = None,
) -> None:
    """Plot (and with --json, list) the position each image token receives under PanoRoPE."""
    from panollava.cli_support import console, fail, load_config_or_fail, user_errors
    from panollava.positional.figure import plot_positions
    from panollava.positional.panorope import check_panorope_layout, position_grids
    from panollava.views import make_layout

    if kind not in ("mrope", "1d"):
        fail(f"--kind must be 'mrope' or '1d', got {kind!r}")
    if grid < 1:
        fail(f"--grid must be at least 1, got {grid}")
    flags = {"strategy": strategy, "fov_deg": fov, "overlap": overlap, "pitch_deg": pitch}
    overrides = [f"views.{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    cfg = load_config_or_fail(config, [*overrides, *(set_ or [])])
    layout = make_layout(cfg.views)
    with user_errors(ValueError):
        check_panorope_layout(layout)
    path = plot_positions(layout, (grid, grid), out, kind=kind)  # type: ignore[arg-type]
    console.print(f"figure -> {path}")
    if json_out is not None:
        record = position_grids(layout, (grid, grid), kind)  # type: ignore[arg-type]
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(record, indent=1), encoding="utf-8")
        console.print(f"positions -> {json_out}")


def register(app: typer.Typer) -> None:
    app.command("positions")(positions_command)
