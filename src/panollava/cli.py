"""The one ``panollava`` command line. Each subcommand is a thin wrapper over a library function.

Packages own their commands in ``<package>/commands.py`` (torch-free at import, so ``--help``
answers at once) and are registered here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from panollava.cli_support import (
    ConfigArgs,
    console,
    load_config_or_fail,
    split_config_args,
)
from panollava.config import ConfigError, config_to_yaml, load_config
from panollava.data import commands as data_commands
from panollava.evaluation import commands as evaluation_commands
from panollava.inference import commands as inference_commands
from panollava.models import commands as models_commands
from panollava.positional import commands as positional_commands
from panollava.serve import commands as serve_commands
from panollava.training import commands as training_commands
from panollava.views import commands as views_commands

app = typer.Typer(
    name="panollava",
    help="Vision-language models for 360° equirectangular panoramas.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _logging() -> None:
    """Vision-language models for 360° equirectangular panoramas."""
    # One plain line per event on stderr (readable under nohup/SLURM); a no-op when the host
    # (a test runner, a notebook) has configured logging already.
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


config_app = typer.Typer(help="Validate and show YAML configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
__all__ = ["app"]


@config_app.command("validate")
def config_validate(
    files: Annotated[list[Path], typer.Argument(help="YAML files to validate.")],
) -> None:
    """Validate config files against the schema; exit 1 if any is invalid."""
    bad = 0
    for f in files:
        try:
            load_config(f)
            console.print(f"[green]ok[/] {escape(str(f))}", highlight=False)
        except ConfigError as exc:
            bad += 1
            console.print(f"[red]invalid[/] {escape(str(exc))}", highlight=False)
    if bad:
        raise typer.Exit(1)


@config_app.command("show")
def config_show(args: ConfigArgs = None) -> None:
    """Print the resolved config ([CONFIG] + KEY=VALUE overrides + defaults) as YAML."""
    file, overrides = split_config_args(args)
    cfg = load_config_or_fail(file, overrides)
    typer.echo(config_to_yaml(cfg), nl=False)


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("outputs/demo"),
    n: Annotated[int, typer.Option(help="Synthetic panoramas to render.")] = 1500,
    seed: Annotated[int, typer.Option(help="Seed of data and training.")] = 0,
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="Dotted overrides KEY=VALUE of configs/panollava/demo.yaml."),
    ] = None,
) -> None:
    """The main job on the embedded default: synthetic panoramas -> tiny PanoLLaVA trained in
    three stages on CPU -> evaluation and report, next to the image-blind baseline."""
    from panollava.demo import run_demo  # deferred: keeps --help fast

    run_demo(out, n=n, seed=seed, overrides=overrides)


for _package in (
    views_commands,
    data_commands,
    positional_commands,
    training_commands,
    inference_commands,
    evaluation_commands,
    serve_commands,
    models_commands,
):
    _package.register(app)


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
