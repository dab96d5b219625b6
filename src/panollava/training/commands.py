"""``panollava train``: run the stages of a YAML config (PanoLLaVA or a PanoAdapt family)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from panollava.cli_support import (
    ConfigArgs,
    console,
    fail,
    load_config_or_fail,
    split_config_args,
    user_errors,
)


def train_command(
    args: ConfigArgs,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the newest run of this experiment.")
    ] = False,
    run: Annotated[
        Path | None,
        typer.Option(
            "--run", "--run-dir", help="Run folder to create or continue (default: a new one)."
        ),
    ] = None,
    stages: Annotated[
        str | None, typer.Option(help="Comma-separated subset of stages to run.")
    ] = None,
) -> None:
    """Train all stages (or --stages) of CONFIG [KEY=VALUE...]; resume mid-stage with --resume."""
    # deferred: keeps --help fast
    from panollava.data.images import ImageLoadError
    from panollava.data.quic360 import DataError
    from panollava.models.build import build_system
    from panollava.training.trainer import preflight, run_training

    config, overrides = split_config_args(args)
    if config is None:
        fail(
            "train needs a YAML config (see configs/), e.g. `panollava train configs/panollava/tiny.yaml`"
        )
    cfg = load_config_or_fail(config, overrides)
    selected = [s.strip() for s in stages.split(",")] if stages else None
    with user_errors(FileNotFoundError, DataError, ImageLoadError, ValueError):
        run = preflight(cfg, run_dir=run, resume=resume, stages=selected)  # before any model
    system = build_system(cfg)
    done = run_training(cfg, system, run_dir=run, resume=resume, stages=selected)
    console.print(f"[green]run folder:[/] {escape(str(done))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
