"""The base of every config section (torch-free, so schema modules can import it cheaply)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel"]


class StrictModel(BaseModel):
    """Unknown keys are errors (with the valid ones listed by :mod:`panollava.config`) and
    assignments are validated, so an override can never smuggle in a wrong type."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
