"""``panollava infer``: answer a query about one panorama with a PanoAdapt family model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def infer_command(
    image: Annotated[Path, typer.Option("--image", help="Equirectangular panorama.")],
    query: Annotated[str, typer.Option("--query", help="The question / caption query.")],
    family: Annotated[
        str, typer.Option(help="VLM family: qwen2_5_vl, qwen2_vl, internvl, gemma3.")
    ] = "qwen2_5_vl",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="HF id or local folder (default: the family's checkpoint); "
            "'tiny' builds a random-weight stand-in (offline smoke test).",
        ),
    ] = None,
    strategy: Annotated[str, typer.Option(help="View strategy.")] = "anyres_e2p",
    size: Annotated[int, typer.Option(help="Tile size in pixels.")] = 448,
    max_new_tokens: Annotated[int, typer.Option(help="Greedy decoding length.")] = 128,
    show_views: Annotated[
        Path | None, typer.Option(help="Also write the views figure and files to this folder.")
    ] = None,
) -> None:
    """Print the model's answer for QUERY about IMAGE (views built exactly as in training)."""
    from rich.console import Console

    from panollava.config import ImageConfig, ViewsConfig
    from panollava.data.images import ImageLoadError, load_erp
    from panollava.models.adapters.collate import AdaptSample
    from panollava.models.adapters.loading import load_adapter
    from panollava.views import build_viewset, required_erp_width

    console = Console(stderr=True)
    views = ViewsConfig(strategy=strategy, tile_size=size)
    try:
        erp = load_erp(image, cfg=ImageConfig(), min_width=required_erp_width(views))
    except ImageLoadError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    viewset = build_viewset(erp, views)
    if show_views is not None:
        from panollava.views.figure import save_views_figure
        from panollava.views.io import save_viewset

        save_viewset(viewset, show_views, source=image)
        save_views_figure(erp, viewset, show_views / "views.png")
    loaded = load_adapter(family, views, checkpoint=model, tiny_corpus=[query])
    batch = loaded.collate(train=False)([AdaptSample(viewset.pixels, query, url=str(image))])
    tokenizer = loaded.processor.tokenizer
    new = loaded.wrapper.generate(
        batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id
    )
    answer = tokenizer.decode(new[0], skip_special_tokens=True).strip()
    typer.echo(answer)
    console.print(
        json.dumps(
            {
                "family": family,
                "model": model or loaded.facts.default_checkpoint,
                "views": len(viewset),
            }
        ),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("infer")(infer_command)
