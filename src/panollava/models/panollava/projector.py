"""Panorama projector: multi-view PE -> projection to the LLM width -> view stitching."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PanoramaProjector"]


class PanoramaProjector(nn.Module):
    """``(B, V, N, D_in)`` view tokens -> ``(B, K, D_llm)`` LLM embeddings.

    ``pe`` (optional) adds a positional code to the ``D_in`` tokens (see
    :mod:`panollava.positional`); ``keep_index`` ``(K,)`` selects the kept tokens of the flattened
    ``V * N`` sequence (view stitching, e.g. ``stride_views``); None keeps all (``concat``).
    """

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        num_views: int,
        tokens_per_view: int,
        hidden_dim: int | None = None,
        pe: nn.Module | None = None,
        keep_index: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.pe = pe
        self.proj_in_dim = in_dim
        if hidden_dim is None:
            self.proj: nn.Module = nn.Linear(in_dim, out_dim)
        else:
            self.proj = nn.Sequential(
                nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim)
            )
        self.num_views, self.tokens_per_view = num_views, tokens_per_view
        total = num_views * tokens_per_view
        if keep_index is not None:
            if keep_index.ndim != 1 or int(keep_index.max()) >= total:
                raise ValueError(f"keep_index must index the {total} view tokens")
            self.register_buffer("keep_index", keep_index.long(), persistent=False)
        else:
            self.keep_index = None

    @property
    def num_output_tokens(self) -> int:
        if self.keep_index is None:
            return self.num_views * self.tokens_per_view
        return int(self.keep_index.numel())

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, V, N, D_in)`` -> ``(embeds (B, K, D_llm), projected (B, V, N, D_llm))``."""
        if self.pe is not None:
            tokens = self.pe(tokens)  # (B, V, N, D_in) + positional code
        projected = self.proj(tokens)  # (B, V, N, D_llm)
        flat = projected.flatten(1, 2)  # (B, V*N, D_llm)
        if self.keep_index is not None:
            flat = flat.index_select(1, self.keep_index)  # (B, K, D_llm)
        return flat, projected
