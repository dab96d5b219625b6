"""Package ``__init__`` files re-export their public names lazily (PEP 562), so importing a
package's schema (``panollava.views.schema``) never pulls torch in through ``__init__``::

    __all__, __getattr__ = lazy_exports(__name__, {"build_viewset": "viewset"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and a module ``__getattr__`` importing ``package.<exports[name]>`` on first use."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return sorted(exports), __getattr__
