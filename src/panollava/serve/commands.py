"""``panollava serve``: the local web demo (FastAPI + a static page with a 360° viewer)."""

from __future__ import annotations

from typing import Annotated

import typer


def adapter_answerer(family: str, model: str | None, size: int, max_new_tokens: int):
    """An ``Answerer`` backed by a PanoAdapt family model (pretrained, folder or ``tiny``)."""
    from panollava.config import ViewsConfig
    from panollava.models.adapters.collate import AdaptSample
    from panollava.models.adapters.loading import load_adapter

    views = ViewsConfig(tile_size=size)
    loaded = load_adapter(
        family,
        views,
        checkpoint=model,
        tiny_corpus=["what objects colors are there in the panorama"],
    )
    collate = loaded.collate(train=False)
    tokenizer = loaded.processor.tokenizer

    def answer(viewset, query: str) -> str:
        batch = collate([AdaptSample(viewset.pixels, query)])
        new = loaded.wrapper.generate(
            batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id
        )
        return tokenizer.decode(new[0], skip_special_tokens=True).strip()

    return answer, views


def serve_command(
    family: Annotated[str, typer.Option(help="VLM family.")] = "qwen2_5_vl",
    model: Annotated[str | None, typer.Option(help="HF id, folder or 'tiny'.")] = None,
    size: Annotated[int, typer.Option(help="Tile size in pixels.")] = 448,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    max_new_tokens: Annotated[int, typer.Option(help="Answer length.")] = 64,
) -> None:
    """Serve the demo page: upload a panorama, look around, ask, see the views used."""
    import uvicorn

    from panollava.serve.app import create_app

    answer, views = adapter_answerer(family, model, size, max_new_tokens)
    uvicorn.run(create_app(answer, views, title=f"panollava · {family}"), host=host, port=port)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
