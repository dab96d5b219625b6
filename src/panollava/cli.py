"""The one ``panollava`` command line. Each subcommand is a thin wrapper over a library function.

Subsystems own their commands in ``<subsystem>/commands.py`` and are registered here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from panollava.cli_support import console, fail, load_config_or_fail
from panollava.config import ConfigError, config_to_yaml, load_config

app = typer.Typer(
    name="panollava",
    help="Vision-language models for 360° equirectangular panoramas.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Validate and show YAML configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
__all__ = ["app", "fail"]


@config_app.command("validate")
def config_validate(
    files: Annotated[list[Path], typer.Argument(help="YAML files to validate.")],
) -> None:
    """Validate config files against the schema; exit 1 if any is invalid."""
    bad = 0
    for f in files:
        try:
            load_config(f)
            console.print(f"[green]ok[/] {f}")
        except ConfigError as exc:
            bad += 1
            console.print(f"[red]invalid[/] {exc}", highlight=False)
    if bad:
        raise typer.Exit(1)


@config_app.command("show")
def config_show(
    file: Annotated[Path | None, typer.Argument(help="YAML file (defaults if omitted).")] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Dotted overrides such as views.fov_deg=60.")
    ] = None,
) -> None:
    """Print the resolved config (file + overrides + defaults) as YAML."""
    if file is not None and "=" in str(file):  # only overrides were given
        overrides = [str(file), *(overrides or [])]
        file = None
    cfg = load_config_or_fail(file, overrides)
    typer.echo(config_to_yaml(cfg), nl=False)


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("outputs/demo"),
    n: Annotated[int, typer.Option(help="Synthetic panoramas to render.")] = 400,
    seed: Annotated[int, typer.Option(help="Seed of data and training.")] = 0,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Dotted overrides of configs/panollava/tiny.yaml.")
    ] = None,
) -> None:
    """The main job on the embedded default: synthetic panoramas -> tiny PanoLLaVA trained in
    three stages on CPU -> evaluation and report, next to the image-blind baseline."""
    from panollava.demo import run_demo

    run_demo(out, n=n, seed=seed, overrides=overrides)


def _register_subcommands() -> None:
    """Attach the subsystems' commands (kept in their own modules)."""
    from panollava.data.commands import register as register_data
    from panollava.evaluation.commands import register as register_evaluation
    from panollava.models.arch_commands import register as register_arch
    from panollava.models.commands import register as register_models
    from panollava.positional.figure import register as register_positions
    from panollava.serve.commands import register as register_serve
    from panollava.training.commands import register as register_training
    from panollava.views.commands import register as register_views

    register_views(app)
    register_data(app)
    register_evaluation(app)
    register_models(app)
    register_arch(app)
    register_positions(app)
    register_serve(app)
    register_training(app)
    # -- further subsystems register here --


_register_subcommands()


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
