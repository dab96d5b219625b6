"""Family lookups for the adapters: the table itself lives in
:mod:`panollava.models.adapters.schema` (pure data, read by the config schema too)."""

from __future__ import annotations

from typing import Any

from panollava.models.adapters.schema import (
    FAMILIES,
    FAMILY_NAMES,
    FamilyFacts,
    PrecisionError,
    get_family,
)

__all__ = [
    "FAMILIES",
    "FAMILY_NAMES",
    "FamilyFacts",
    "PrecisionError",
    "get_family",
    "resolve_module",
]


def resolve_module(model: Any, path: str) -> Any:
    """``model.<path>`` with a clear error naming the missing attribute."""
    node = model
    for part in path.split("."):
        if not hasattr(node, part):
            raise AttributeError(
                f"{type(model).__name__} has no submodule {path!r} (missing {part!r})"
            )
        node = getattr(node, part)
    return node
