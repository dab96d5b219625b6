"""``panollava serve``: the local web demo (FastAPI + a static page with a 360° viewer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from panollava.cli_support import DeviceOption, DtypeOption, MaxNewTokensOption
from panollava.models.adapters.schema import Family


def serve_command(
    run: Annotated[
        Path | None,
        typer.Option("--run", help="A `panollava train` run folder (PanoLLaVA or PanoAdapt)."),
    ] = None,
    family: Annotated[Family, typer.Option(help="Without --run: VLM family.")] = "qwen2_5_vl",
    model: Annotated[
        str | None, typer.Option(help="Without --run: HF id, folder or 'tiny'.")
    ] = None,
    size: Annotated[int, typer.Option(help="Without --run: tile size in pixels.")] = 448,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    max_new_tokens: MaxNewTokensOption = 128,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
) -> None:
    """Serve the demo page: upload a panorama, look around, ask, see the views used."""
    import uvicorn  # deferred: keeps --help fast

    from panollava.inference.commands import open_predictor
    from panollava.serve.app import create_app

    predictor = open_predictor(
        run,
        family,
        model,
        size,
        max_new_tokens=max_new_tokens,
        tiny_corpus=["what objects colors are there in the panorama"],
        device=device,
        dtype=dtype,
    )
    app = create_app(
        predictor.answer,
        predictor.views_cfg,
        image=predictor.image_cfg,
        title=f"panollava · {predictor.name}",
    )
    uvicorn.run(app, host=host, port=port)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
