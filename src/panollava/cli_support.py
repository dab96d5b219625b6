"""What every ``panollava`` subcommand shares: red one-line errors and exit code 2.

Library code raises exceptions that name the file/row and the fix; commands turn the expected
ones into a clean message instead of a traceback::

    with user_errors(ImageLoadError, ConfigError):
        erp = load_erp(image)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

__all__ = [
    "DeviceOption",
    "DtypeOption",
    "console",
    "escape",
    "fail",
    "load_config_or_fail",
    "styled",
    "user_errors",
]

console = Console(stderr=True)

# Where the model runs (infer, serve, eval): see panollava.inference.resolve_device/_dtype.
DeviceOption = Annotated[
    str, typer.Option(help="auto (this process's GPU if any, else CPU), cpu, cuda, cuda:1 ...")
]
DtypeOption = Annotated[
    str, typer.Option(help="auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16, float16")
]


def styled(label: str, style: str, text: object) -> Text:
    """``label`` in ``style``, a space, then ``text`` exactly as given: user text (paths,
    messages, URLs) is never read as rich markup, so ``[red]`` or ``[/x]`` print as they are.
    (Inside f-strings that do use markup, wrap user text in :func:`escape`.)"""
    return Text.assemble((label, style), " ", str(text))


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a red error to stderr (the message verbatim, never as markup), exit with ``code``."""
    console.print(styled("error:", "bold red", message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors(*kinds: type[BaseException]) -> Iterator[None]:
    """Turn the listed exception types into :func:`fail` with their message."""
    try:
        yield
    except kinds as exc:
        fail(str(exc))


def load_config_or_fail(path: Path | None, overrides: list[str] | None = None):
    """:func:`panollava.config.load_config`, exiting with its message when the config is bad."""
    from panollava.config import ConfigError, load_config

    try:
        return load_config(path, overrides)
    except ConfigError as exc:
        fail(str(exc))
