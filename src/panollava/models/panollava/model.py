"""PanoLLaVA: vision encoder -> resampler -> panorama projector -> causal LLM.

The prompt holds one run of ``num_image_tokens`` vision placeholder tokens (the collate expands
the single placeholder of the chat template); their input embeddings are replaced by the
projected view tokens in one vectorised ``masked_scatter`` (no per-sample Python loops).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from panollava.models.base import StepOutput
from panollava.models.lm_loss import answer_lm_loss
from panollava.models.panollava.encoder import VisionEncoder
from panollava.models.panollava.projector import PanoramaProjector
from panollava.views import ViewLayout, patch_correspondences

__all__ = ["PanoLLaVA"]

FEATURE_SOURCES = ("encoder", "resampler", "projector")


class PanoLLaVA(nn.Module):
    """The custom panorama VLM (SYSTEM.md §6).

    ``layout`` is the view layout every sample uses (the config's strategy); ``vision_token_id``
    the tokenizer id of the vision placeholder. ``feature_source`` selects which tile features
    the overlap loss sees.
    """

    def __init__(
        self,
        *,
        encoder: VisionEncoder,
        resampler: nn.Module,
        projector: PanoramaProjector,
        llm: nn.Module,
        layout: ViewLayout,
        vision_token_id: int,
        feature_source: str = "resampler",
    ) -> None:
        super().__init__()
        if feature_source not in FEATURE_SOURCES:
            raise ValueError(
                f"feature_source must be one of {FEATURE_SOURCES}, got {feature_source!r}"
            )
        self.encoder = encoder
        self.resampler = resampler
        self.projector = projector
        self.llm = llm
        self.layout = layout
        self.vision_token_id = vision_token_id
        self.feature_source = feature_source
        self.tile_index = torch.tensor([v.index for v in layout.tiles], dtype=torch.long)

    @property
    def num_image_tokens(self) -> int:
        """Vision tokens spliced into each prompt (after stitching)."""
        return self.projector.num_output_tokens

    def feature_grid(self) -> tuple[int, int] | None:
        """Patch grid of the features the overlap loss sees (None when the grid is lost)."""
        if self.feature_source == "encoder":
            return self.encoder.grid
        return self.resampler.output_grid(self.encoder.grid)

    def overlap_pairs(self) -> tuple:
        """Correspondences of adjacent tiles on :meth:`feature_grid` (raises if it is lost)."""
        grid = self.feature_grid()
        if grid is None:
            raise ValueError(
                f"overlap losses need a patch grid, but the {type(self.resampler).__name__} "
                "resampler does not keep one: use feature_source: encoder or a grid resampler"
            )
        return patch_correspondences(self.layout, grid)

    # ---------------------------------------------------------------- vision
    def encode_views(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views ``(B, V, 3, H, W)`` -> ``embeds (B, K, D_llm)`` and per-stage view features."""
        b, v = pixels.shape[:2]
        feats = self.encoder(pixels.flatten(0, 1))  # (B*V, N, D_enc)
        resampled, _ = self.resampler(feats, self.encoder.grid)  # (B*V, N', D_res)
        embeds, projected = self.projector(resampled.view(b, v, *resampled.shape[1:]))
        return {
            "encoder": feats.view(b, v, *feats.shape[1:]),
            "resampler": resampled.view(b, v, *resampled.shape[1:]),
            "projector": projected,  # (B, V, N', D_llm) before stitching
            "embeds": embeds,  # (B, K, D_llm) after PE and stitching
        }

    def splice(self, input_ids: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """Text embeddings ``(B, L, D)`` with the placeholder positions replaced by ``embeds``."""
        text = self.llm.get_input_embeddings()(input_ids)  # (B, L, D)
        mask = input_ids == self.vision_token_id  # (B, L)
        counts = mask.sum(1)
        if bool((counts != embeds.shape[1]).any()):
            raise ValueError(
                f"each prompt must hold {embeds.shape[1]} vision placeholder tokens "
                f"(id {self.vision_token_id}), found {counts.tolist()}: was the prompt truncated?"
            )
        return text.masked_scatter(mask[..., None], embeds.to(text.dtype))

    # ------------------------------------------------------------------ steps
    def step(self, batch: dict[str, Any]) -> StepOutput:
        """One training/validation forward: LM loss (+ tile features for the overlap loss)."""
        vision = self.encode_views(batch["pixel_values"])
        out_features = pairs = None
        if batch.get("need_overlap", False):
            feats = vision[self.feature_source]
            out_features = feats[:, self.tile_index.to(feats.device)]  # (B, T, N, D) tiles only
            pairs = [self._tile_pairs()] * feats.shape[0]
        lm_loss = None
        if "input_ids" in batch and batch.get("labels") is not None:
            embeds = self.splice(batch["input_ids"], vision["embeds"])
            lm_loss = answer_lm_loss(
                self.llm,
                batch["labels"],
                inputs_embeds=embeds,
                attention_mask=batch["attention_mask"],
            )
        return StepOutput(lm_loss=lm_loss, features=out_features, pairs=pairs)

    def _tile_pairs(self) -> tuple:
        """Correspondences re-indexed to positions among the tiles (global view excluded)."""
        position = {int(view): k for k, view in enumerate(self.tile_index.tolist())}
        return tuple(p.reindexed(position[p.i], position[p.j]) for p in self.overlap_pairs())

    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        max_new_tokens: int = 128,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Greedy decoding with KV cache for left-padded prompts -> new token ids ``(B, T)``."""
        vision = self.encode_views(pixel_values)
        embeds = self.splice(input_ids, vision["embeds"])
        return self.llm.generate(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            **kwargs,
        )
