"""What every ``panollava`` subcommand shares: plain error lines with exit code 2, one spelling
of the common options, and one ``CONFIG KEY=VALUE...`` argument rule.

Library code raises exceptions that name the file/row and the fix; commands turn the expected
ones into a clean message instead of a traceback::

    with user_errors(ImageLoadError, ConfigError):
        erp = load_erp(image)

This module sits at the CLI layer (only ``*/commands.py`` and ``cli.py`` import it) and stays
torch-free so that ``--help`` answers at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from panollava.config import ConfigError, PanoConfig, load_config

__all__ = [
    "BootstrapOption",
    "ConfigArgs",
    "DeviceOption",
    "DtypeOption",
    "MaxNewTokensOption",
    "ProgressEveryOption",
    "console",
    "fail",
    "load_config_or_fail",
    "split_config_args",
    "user_errors",
]

console = Console(stderr=True)

# Where the model runs (infer, serve, eval): see panollava.inference.predictor.resolve_device.
DeviceOption = Annotated[
    str, typer.Option(help="auto (this process's GPU if any, else CPU), cpu, cuda, cuda:1 ...")
]
DtypeOption = Annotated[
    str, typer.Option(help="auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16, float16")
]
MaxNewTokensOption = Annotated[
    int, typer.Option("--max-new-tokens", help="Greedy decoding length (new tokens).")
]
ProgressEveryOption = Annotated[
    float,
    typer.Option(
        "--progress-every",
        min=0,
        help="Outside a terminal (nohup, SLURM, pipes): seconds between progress lines.",
    ),
]
BOOTSTRAP_RESAMPLES = 1000
BootstrapOption = Annotated[
    int, typer.Option("--bootstrap", help="Bootstrap resamples for the 95% CIs (0: none).")
]
ConfigArgs = Annotated[
    list[str] | None,
    typer.Argument(
        help="A YAML config and/or dotted overrides KEY=VALUE (values are YAML: "
        "views.fov_deg=60, 'data.test=[a/test.tsv]').",
        show_default=False,
    ),
]

# An override is a dotted key, '=', then anything (the value may hold '/', '[', ']' or '=').
_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*=")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` in red to stderr (the message is never read as markup) and exit."""
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors(*kinds: type[BaseException]) -> Iterator[None]:
    """Turn the listed exception types into :func:`fail` with their message."""
    try:
        yield
    except kinds as exc:
        fail(str(exc))


def split_config_args(args: Sequence[str] | None) -> tuple[Path | None, list[str]]:
    """``[CONFIG] KEY=VALUE...`` -> (config path or None, overrides); one config at most."""
    overrides = [a for a in args or [] if _OVERRIDE.match(a)]
    paths = [a for a in args or [] if not _OVERRIDE.match(a)]
    if len(paths) > 1:
        fail(
            f"expected one YAML config and KEY=VALUE overrides, got several configs: {paths} "
            "(an override looks like views.fov_deg=60)"
        )
    return (Path(paths[0]) if paths else None), overrides


def load_config_or_fail(path: Path | None, overrides: list[str] | None = None) -> PanoConfig:
    """:func:`panollava.config.load_config`, exiting with its message when the config is bad."""
    with user_errors(ConfigError):
        return load_config(path, overrides)
