"""The causal LM loss of a training step, with vocabulary logits only where a loss is taken.

A Hugging Face ``...ForCausalLM`` / ``...ForConditionalGeneration`` given ``labels`` projects
every position onto the vocabulary. In a captioning step only the answer positions carry a loss
(the prompt and the thousands of image tokens are masked), so this passes the boolean mask of
the positions whose *next* token is labelled as ``logits_to_keep`` (transformers >= 5) and takes
the same mean cross entropy HF takes. Identical loss (tests/models/test_parity.py); at real
size the logits shrink from ``(B, L, V)`` to ``(answer tokens, V)``, e.g. 2.5 GB -> 30 MB per
Gemma3 sample with 9 views.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from panollava.data.collate import IGNORE_INDEX

__all__ = ["answer_lm_loss"]


def answer_lm_loss(model: nn.Module, labels: torch.Tensor, **inputs: Any) -> torch.Tensor:
    """Mean next-token cross entropy over the labelled tokens of ``labels (B, L)``.

    ``inputs`` are the model's other keyword arguments (``input_ids`` or ``inputs_embeds``,
    ``attention_mask``, pixel values, ``position_ids`` …). Equals
    ``model(**inputs, labels=labels).loss``.
    """
    targets = labels[:, 1:]  # (B, L-1): position p predicts token p + 1
    keep = torch.zeros_like(labels, dtype=torch.bool)  # (B, L)
    keep[:, :-1] = targets != IGNORE_INDEX
    out = model(**inputs, logits_to_keep=keep)
    logits = out.logits  # (K, V): the kept positions, flattened in (b, p) order
    return F.cross_entropy(logits.float(), targets[keep[:, :-1]])
