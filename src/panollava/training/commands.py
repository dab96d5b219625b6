"""``panollava train``: run the stages of a YAML config (PanoLLaVA or a PanoAdapt family)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from panollava.cli_support import DeviceOption, DtypeOption


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
    from panollava.cli_support import console, load_config_or_fail
    from panollava.systems import build_system
    from panollava.training.trainer import run_training

    cfg = load_config_or_fail(config, overrides)
    system = build_system(cfg)
    selected = [s.strip() for s in stages.split(",")] if stages else None
    done = run_training(cfg, system, run_dir=run_dir, resume=resume, stages=selected)
    console.print(f"[green]run folder:[/] {done}")


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise typer.BadParameter(f"--shard takes K/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= k < n:
        raise typer.BadParameter(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def eval_command(
    run: Annotated[
        Path,
        typer.Option(
            "--run",
            "--run-dir",
            help="Run folder (runs/<experiment>/<stamp>); spell it --run-dir under torchrun, "
            "whose own parser claims --run.",
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Argument(
            help="YAML to evaluate with (default: the run's own RUN/config.yaml); overrides "
            "may follow it, or stand alone."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Data split to evaluate.")] = "test",
    max_new_tokens: Annotated[int, typer.Option(help="Greedy decoding length.")] = 128,
    batch_size: Annotated[int, typer.Option(help="Most prompts per generation batch.")] = 16,
    token_budget: Annotated[
        int | None,
        typer.Option(
            help="Most padded prompt tokens per batch (batch x longest prompt, image tokens "
            "included)."
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="K/N: answer the pairs of shard K of N (whole panoramas, round-robin) into "
            "predictions.shard-K-of-N.csv (default under torchrun: RANK/WORLD_SIZE; rank 0 "
            "merges and scores)."
        ),
    ] = None,
    merge: Annotated[
        int | None,
        typer.Option(help="Merge the N finished shard files into predictions.csv and score."),
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% CIs.")] = 200,
    backend: Annotated[
        str,
        typer.Option(
            help="transformers (default, every model) or vllm (PanoAdapt runs without PanoRoPE, "
            "needs `pip install vllm` and CUDA; generates from the run's merged export)."
        ),
    ] = "transformers",
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides.")] = None,
) -> None:
    """Generate once per (image, query) pair of SPLIT (resumable, shardable), score, report."""
    from panollava.cli_support import console, load_config_or_fail, user_errors
    from panollava.evaluation.run_eval import evaluate_run, merge_and_score
    from panollava.evaluation.vllm_backend import VLLMUnavailableError
    from panollava.models.adapters.families import PrecisionError

    if config is not None and "=" in config.name:  # only overrides were given
        overrides, config = [str(config), *(overrides or [])], None
    cfg = load_config_or_fail(config or run / "config.yaml", overrides)
    if merge is not None:
        if shard is not None:
            raise typer.BadParameter("use either --shard (generate) or --merge (join + score)")
        with user_errors(FileNotFoundError, ValueError):
            out = merge_and_score(cfg, run, merge, split=split, n_boot=n_boot)
    else:
        with user_errors(VLLMUnavailableError, PrecisionError):
            out = evaluate_run(
                cfg,
                run,
                split=split,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                token_budget=token_budget,
                n_boot=n_boot,
                shard=_parse_shard(shard),
                backend=backend,
                device=device,
                dtype=dtype,
            )
    console.print(f"[green]evaluation:[/] {out}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("eval")(eval_command)
