"""``panollava infer`` and ``export``: answer a query about one panorama with a trained run or a
VLM family; write a run as standard model folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from panollava.cli_support import (
    DeviceOption,
    DtypeOption,
    MaxNewTokensOption,
    console,
    fail,
    user_errors,
)
from panollava.models.adapters.schema import Family


def open_predictor(run: Path | None, family: str, model: str | None, size: int, **kwargs):
    """:meth:`Predictor.open` with clear exit-2 errors for unusable run folders."""
    from panollava.inference.predictor import Predictor  # deferred: keeps --help fast
    from panollava.inference.run import RunNotTrainedError
    from panollava.models.adapters.families import PrecisionError

    with user_errors(FileNotFoundError, RunNotTrainedError, PrecisionError):
        return Predictor.open(run, family, model, size, **kwargs)


def infer_command(
    image: Annotated[Path, typer.Option("--image", help="Equirectangular panorama.")],
    query: Annotated[str, typer.Option("--query", help="The question / caption query.")],
    run: Annotated[
        Path | None,
        typer.Option(
            "--run",
            help="A `panollava train` run folder (PanoLLaVA or PanoAdapt): its model, trained "
            "weights, views and image settings.",
        ),
    ] = None,
    family: Annotated[Family, typer.Option(help="Without --run: VLM family.")] = "qwen2_5_vl",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Without --run: HF id or local folder (default: the family's checkpoint); "
            "'tiny' builds a random-weight stand-in (offline smoke test).",
        ),
    ] = None,
    size: Annotated[int, typer.Option(help="Without --run: tile size in pixels.")] = 448,
    max_new_tokens: MaxNewTokensOption = 128,
    show_views: Annotated[
        Path | None, typer.Option(help="Also write the views figure and files to this folder.")
    ] = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
) -> None:
    """Print the model's answer for QUERY about IMAGE (views built exactly as in training)."""
    from panollava.data.images import ImageLoadError  # deferred: keeps --help fast

    if not image.is_file():  # before loading a model that may take minutes
        fail(f"file not found: {image}")
    predictor = open_predictor(
        run,
        family,
        model,
        size,
        max_new_tokens=max_new_tokens,
        tiny_corpus=[query],
        device=device,
        dtype=dtype,
    )
    with user_errors(ImageLoadError):
        erp, viewset = predictor.load(image)
    if show_views is not None:
        from panollava.views.figure import save_views_figure
        from panollava.views.io import save_viewset

        save_viewset(viewset, show_views, source=image)
        save_views_figure(erp, viewset, show_views / "views.png")
    typer.echo(predictor.answer(viewset, query))
    summary = {"model": predictor.name, "views": len(viewset), **predictor.system.describe()}
    console.print(json.dumps(summary, ensure_ascii=False), highlight=False, soft_wrap=True)


def export_command(
    run: Annotated[Path, typer.Option("--run", help="A `panollava train` run folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write (must not exist).")],
) -> None:
    """Merge LoRA and save the run's model as standard HF folder(s) (safetensors) + panorama.json."""
    from panollava.inference.export import export_run  # deferred: keeps --help fast
    from panollava.inference.run import RunNotTrainedError

    if out.exists():
        fail(f"{out} exists; choose a new folder")
    with user_errors(FileNotFoundError, RunNotTrainedError):
        done = export_run(run, out)
    console.print(f"[green]exported:[/] {escape(str(done))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("infer")(infer_command)
    app.command("export")(export_command)
