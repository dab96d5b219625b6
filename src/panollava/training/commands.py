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


def eval_command(
    config: Annotated[Path, typer.Argument(help="The YAML config the run was trained with.")],
    run: Annotated[Path, typer.Option("--run", help="Run folder (runs/<experiment>/<stamp>).")],
    split: Annotated[str, typer.Option(help="Data split to evaluate.")] = "test",
    max_new_tokens: Annotated[int, typer.Option(help="Greedy decoding length.")] = 128,
    batch_size: Annotated[int, typer.Option(help="Prompts per generation batch.")] = 16,
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides.")] = None,
) -> None:
    """Generate for every (image, query) pair of SPLIT, score it (grouped) and write the report."""
    from rich.console import Console

    from panollava.config import load_config
    from panollava.evaluation.run_eval import evaluate_run

    cfg = load_config(config, overrides)
    out = evaluate_run(cfg, run, split=split, max_new_tokens=max_new_tokens, batch_size=batch_size)
    Console(stderr=True).print(f"[green]evaluation:[/] {out}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("eval")(eval_command)
