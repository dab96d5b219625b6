"""``panollava infer``: answer a query about one panorama with a trained run or a VLM family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from panollava.cli_support import DeviceOption, DtypeOption
from panollava.models.adapters.families import FAMILY_NAMES


def load_predictor(
    run: Path | None,
    family: str,
    model: str | None,
    size: int,
    max_new_tokens: int,
    *,
    tiny_corpus: list[str] | None = None,
    device: str = "auto",
    dtype: str = "auto",
):
    """A :class:`~panollava.inference.Predictor` for ``--run`` or ``--family/--model``.

    Exits with a clear message (code 2) when the run folder is not usable.
    """
    from panollava.cli_support import user_errors
    from panollava.config import ViewsConfig
    from panollava.inference import Predictor, RunNotTrainedError
    from panollava.models.adapters.families import PrecisionError

    if run is not None:
        with user_errors(FileNotFoundError, RunNotTrainedError, PrecisionError):
            return Predictor.from_run(
                run, max_new_tokens=max_new_tokens, device=device, dtype=dtype
            )
    with user_errors(PrecisionError):
        return Predictor.from_family(
            family,
            model,
            views=ViewsConfig(tile_size=size),
            max_new_tokens=max_new_tokens,
            tiny_corpus=tiny_corpus,
            device=device,
            dtype=dtype,
        )


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
    family: Annotated[
        str,
        typer.Option(help=f"Without --run: VLM family ({', '.join(FAMILY_NAMES)})."),
    ] = "qwen2_5_vl",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Without --run: HF id or local folder (default: the family's checkpoint); "
            "'tiny' builds a random-weight stand-in (offline smoke test).",
        ),
    ] = None,
    size: Annotated[int, typer.Option(help="Without --run: tile size in pixels.")] = 448,
    max_new_tokens: Annotated[int, typer.Option(help="Greedy decoding length.")] = 128,
    show_views: Annotated[
        Path | None, typer.Option(help="Also write the views figure and files to this folder.")
    ] = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
) -> None:
    """Print the model's answer for QUERY about IMAGE (views built exactly as in training)."""
    from panollava.cli_support import console, fail, user_errors
    from panollava.data.images import ImageLoadError

    if not image.is_file():  # before loading a model that may take minutes
        fail(f"file not found: {image}")
    predictor = load_predictor(
        run, family, model, size, max_new_tokens, tiny_corpus=[query], device=device, dtype=dtype
    )
    with user_errors(ImageLoadError):
        erp, viewset = predictor.load(image)
    if show_views is not None:
        from panollava.views.figure import save_views_figure
        from panollava.views.io import save_viewset

        save_viewset(viewset, show_views, source=image)
        save_views_figure(erp, viewset, show_views / "views.png")
    typer.echo(predictor.answer(viewset, query))
    summary = {"model": predictor.name, "views": len(viewset)}
    if predictor.cfg.model is not None and predictor.cfg.model.system == "panoadapt":
        summary["family"] = predictor.cfg.model.family
    console.print(json.dumps(summary, ensure_ascii=False), highlight=False, soft_wrap=True)


def export_command(
    run: Annotated[Path, typer.Option("--run", help="A `panollava train` run folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write (must not exist).")],
    dtype: Annotated[
        str,
        typer.Option(
            help="Weights dtype: auto (PanoAdapt: the base checkpoint's, e.g. bfloat16; "
            "PanoLLaVA: float32), float32, bfloat16, float16."
        ),
    ] = "auto",
) -> None:
    """Merge LoRA and save the run's model as standard HF folder(s) (safetensors) + panorama.json."""
    from panollava.cli_support import console, fail, user_errors
    from panollava.inference import RunNotTrainedError
    from panollava.models.adapters.families import PrecisionError
    from panollava.models.export import export_run

    if out.exists():
        fail(f"{out} exists; choose a new folder")
    if dtype not in ("auto", "float32", "bfloat16", "float16"):
        fail(f"--dtype {dtype!r}: use auto, float32, bfloat16 or float16")
    with user_errors(FileNotFoundError, RunNotTrainedError, PrecisionError):
        done = export_run(run, out, dtype=dtype)
    console.print(f"[green]exported:[/] {done}")


def register(app: typer.Typer) -> None:
    app.command("infer")(infer_command)
    app.command("export")(export_command)
