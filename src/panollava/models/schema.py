"""Config pieces shared by both model systems (pure pydantic, no torch)."""

from __future__ import annotations

from pydantic import Field

from panollava.strict import StrictModel

__all__ = ["LoraSettings"]


class LoraSettings(StrictModel):
    """LoRA via PEFT. ``targets``: groups (``language``, ``vision``, ``all``) or module names."""

    r: int = Field(32, ge=1)
    alpha: int = Field(64, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    targets: list[str] = Field(default_factory=lambda: ["language"])
