"""``panollava views``: decompose a panorama and write the views, their metadata and a figure."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from panollava.cli_support import console, escape, fail, load_config_or_fail, user_errors
from panollava.views.schema import Strategy


def views_command(
    image: Annotated[Path, typer.Argument(help="Equirectangular panorama (JPEG/PNG/WebP).")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="Dotted overrides KEY=VALUE, e.g. views.vfov_deg=60.", show_default=False
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("views_out"),
    config: Annotated[Path | None, typer.Option(help="YAML config to start from.")] = None,
    strategy: Annotated[
        Strategy | None, typer.Option(help="Crop strategy (default anyres_e2p).")
    ] = None,
    fov: Annotated[float | None, typer.Option(help="Tile field of view, degrees.")] = None,
    overlap: Annotated[float | None, typer.Option(help="Overlap of adjacent tiles, 0..1.")] = None,
    num_tiles: Annotated[
        int | None, typer.Option(help="Tiles per ring (overrides overlap).")
    ] = None,
    size: Annotated[int | None, typer.Option(help="Tile size in pixels.")] = None,
    pitch: Annotated[list[float] | None, typer.Option(help="Ring pitch(es), repeatable.")] = None,
    global_view: Annotated[
        bool | None,
        typer.Option(
            "--global/--no-global",
            help="Add (or drop) the whole-panorama view; default: the strategy's own choice.",
        ),
    ] = None,
) -> None:
    """Write view_XX.png, views.json (py360convert angle conventions) and views.png."""
    from panollava.data.images import ImageLoadError, decode_erp  # deferred: keeps --help fast
    from panollava.views import build_viewset, required_erp_width
    from panollava.views.figure import save_views_figure
    from panollava.views.io import save_viewset

    flags = {
        "strategy": strategy,
        "fov_deg": fov,
        "overlap": overlap,
        "num_tiles": num_tiles,
        "tile_size": size,
        "pitch_deg": pitch,
        "global_view": global_view,
    }
    flags_overrides = [f"views.{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    bad = [o for o in overrides or [] if not o.startswith("views.") and not o.startswith("image.")]
    if bad:
        fail(f"views takes views.* and image.* overrides only, got {bad}")
    cfg = load_config_or_fail(config, [*flags_overrides, *(overrides or [])])
    t0 = time.perf_counter()
    with user_errors(ImageLoadError):
        erp = decode_erp(image, cfg=cfg.image, min_width=required_erp_width(cfg.views))
    t1 = time.perf_counter()
    viewset = build_viewset(erp, cfg.views)  # = data.images.load_views, timed in two parts
    t2 = time.perf_counter()
    save_viewset(viewset, out, source=image, erp_hw=tuple(erp.shape[-2:]))
    fig = save_views_figure(erp, viewset, out / "views.png", title=None)
    console.print(
        f"[green]{len(viewset)} views[/] ({cfg.views.strategy}, overlap "
        f"{viewset.layout.ring_overlap:.2f}) from {escape(image.name)} decoded at "
        f"{erp.shape[-1]}x{erp.shape[-2]} in {1e3 * (t1 - t0):.0f} ms, views in "
        f"{1e3 * (t2 - t1):.0f} ms -> {escape(str(out))}/ (figure {escape(fig.name)})"
    )


def register(app: typer.Typer) -> None:
    app.command("views")(views_command)
