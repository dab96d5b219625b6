"""PanoAdapt: an off-the-shelf HF VLM + panorama views, PanoRoPE and the overlap loss.

Family-agnostic by construction: the image tokens are found in ``input_ids`` by the model's
configured image token id, and the per-view features for the overlap loss are the image
embeddings the LLM actually receives (captured by a forward pre-hook on the language model), so
the loss sees exactly what is spliced into the sequence and its gradient flows back through the
projector and the vision tower's LoRA adapters. Each view's tokens are re-ordered to raster
order of its token grid with ``raster_index`` (InternVL crops: crop-major order, thumbnail left out).
A step without labels stops right there: the LLM never runs (the step-0 dead-loss check).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from panollava.models.base import StepOutput
from panollava.models.lm_loss import answer_lm_loss
from panollava.views import ViewLayout, patch_correspondences

__all__ = ["PanoAdaptModel"]

PositionFn = Callable[[torch.Tensor, torch.Tensor, list], torch.Tensor]


class _FeaturesCaptured(Exception):
    """Ends a features-only forward at the language model's input (see ``step``)."""


class PanoAdaptModel(nn.Module):
    """Wraps ``hf_model`` (an ``*ForConditionalGeneration``) for panorama training and generation.

    ``language_model``: the submodule that receives ``inputs_embeds``; ``image_token_id``: from
    the model config; ``token_grid``: a view's content tokens as ``(rows, cols)``;
    ``tokens_per_view``: image tokens per view (default ``rows*cols``); ``raster_index``:
    ``(rows*cols,)`` positions among a view's tokens, in raster order (default: identity);
    ``position_fn``: PanoRoPE (``(input_ids, attention_mask, layout) -> position_ids``) or None.
    """

    def __init__(
        self,
        hf_model: nn.Module,
        *,
        language_model: nn.Module,
        image_token_id: int,
        layout: ViewLayout,
        token_grid: tuple[int, int],
        tokens_per_view: int | None = None,
        raster_index: torch.Tensor | None = None,
        position_fn: PositionFn | None = None,
        correspondence_tolerance: float = 0.5,
    ) -> None:
        super().__init__()
        self.hf_model = hf_model
        self.image_token_id = int(image_token_id)
        self.layout = layout
        self.token_grid = token_grid
        n = token_grid[0] * token_grid[1]
        self.tokens_per_view = tokens_per_view or n
        index = torch.arange(n) if raster_index is None else raster_index.long()
        self.register_buffer("raster_index", index, persistent=False)
        self.position_fn = position_fn
        self.tile_index = [v.index for v in layout.tiles]
        self.tolerance = correspondence_tolerance
        self._captured: torch.Tensor | None = None
        self._features_only = False
        language_model.register_forward_pre_hook(self._capture, with_kwargs=True)

    # ----------------------------------------------------------------- plumbing
    def _capture(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        embeds = kwargs.get("inputs_embeds")
        if embeds is not None and embeds.shape[1] > 1:  # prefill / training, not decode steps
            self._captured = embeds
            if self._features_only:
                raise _FeaturesCaptured  # stop before the language model runs

    def positions(self, batch: dict[str, Any]) -> torch.Tensor | None:
        """PanoRoPE position ids for the batch (None: the family's default positions)."""
        if self.position_fn is None:
            return None
        return self.position_fn(batch["input_ids"], batch["attention_mask"], self.layout)

    def model_inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The HF model's keyword arguments for ``batch`` (processor outputs + PanoRoPE)."""
        skip = {"labels", "urls", "queries", "references", "need_overlap"}
        inputs = {k: v for k, v in batch.items() if k not in skip}
        position_ids = self.positions(batch)
        if position_ids is not None:
            inputs["position_ids"] = position_ids
        return inputs

    def view_features(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Per-view image embeddings of the last forward: ``(B, V, rows*cols, D)`` in raster order."""
        if self._captured is None:
            raise RuntimeError("no forward pass captured: call the model first")
        mask = input_ids == self.image_token_id  # (B, L)
        v, n = len(self.layout), self.tokens_per_view
        counts = mask.sum(1)
        if bool((counts != v * n).any()):
            raise ValueError(
                f"expected {v} views x {n} image tokens (id {self.image_token_id}) per sample, "
                f"found {counts.tolist()}: the processor's token grid differs from the layout's"
            )
        feats = self._captured[mask].view(input_ids.shape[0], v, n, -1)  # (B, V, n, D) family order
        return feats[:, :, self.raster_index]

    # -------------------------------------------------------------------- steps
    def step(self, batch: dict[str, Any]) -> StepOutput:
        labels = batch.get("labels")
        lm_loss = None
        if labels is not None:
            lm_loss = answer_lm_loss(self.hf_model, labels, **self.model_inputs(batch))
        else:  # features only (the step-0 check): vision tower + projector, no language model
            self._features_only = True
            try:
                self.hf_model(**self.model_inputs(batch))
            except _FeaturesCaptured:
                pass
            finally:
                self._features_only = False
        features = pairs = None
        if batch.get("need_overlap", False):
            feats = self.view_features(batch["input_ids"])
            features = feats[:, self.tile_index]  # (B, T, N, D) tiles only
            pairs = [self.tile_pairs()] * feats.shape[0]
        return StepOutput(lm_loss=lm_loss, features=features, pairs=pairs)

    def tile_pairs(self) -> tuple:
        """Correspondences on the token grid, re-indexed to positions among the tiles."""
        position = {view: k for k, view in enumerate(self.tile_index)}
        corr = patch_correspondences(self.layout, self.token_grid, tolerance=self.tolerance)
        return tuple(p.reindexed(position[p.i], position[p.j]) for p in corr)

    @torch.no_grad()
    def generate(self, batch: dict[str, Any], *, max_new_tokens: int = 128, **kwargs: Any):
        """Greedy decoding with the same positions as training -> new token ids ``(B, T)``."""
        inputs = self.model_inputs(batch)
        out = self.hf_model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, **kwargs
        )
        return out[:, batch["input_ids"].shape[1] :]
