"""``panollava train``: run the stages of a YAML config (PanoLLaVA or a PanoAdapt family)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train_command(
    config: Annotated[Path, typer.Argument(help="YAML config (see configs/).")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Dotted overrides, e.g. train.stages.0.lr=1e-4")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the newest run of this experiment.")
    ] = False,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run folder to create or continue (default: new).")
    ] = None,
    stages: Annotated[
        str | None, typer.Option(help="Comma-separated subset of stages to run.")
    ] = None,
) -> None:
    """Train all stages (or --stages) of CONFIG; resume mid-stage with --resume."""
    from rich.console import Console

    from panollava.config import ConfigError, load_config
    from panollava.systems import build_system
    from panollava.training.trainer import run_training

    console = Console(stderr=True)
    try:
        cfg = load_config(config, overrides)
    except ConfigError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    system = build_system(cfg)
    selected = [s.strip() for s in stages.split(",")] if stages else None
    done = run_training(cfg, system, run_dir=run_dir, resume=resume, stages=selected)
    console.print(f"[green]run folder:[/] {done}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
