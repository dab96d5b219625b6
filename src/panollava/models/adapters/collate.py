"""Batches for PanoAdapt: every view an image of one user turn, through the family's processor.

The prompt is the family's real chat template (global view first, then tiles by yaw, then the
query; optionally a short label naming each view's direction). Labels cover the answer and the
end-of-turn marker only; the text length follows the one rule of every collate
(:class:`panollava.data.collate.TextBudget`: text tokens only, a prompt that cannot fit is an
error, a too-long answer is cut, logged and counted).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from panollava.data.collate import IGNORE_INDEX, TextBudget
from panollava.data.sample import PanoSample
from panollava.views import ViewMeta, unit_uint8

__all__ = ["AdapterCollate", "view_label"]


def view_label(view: ViewMeta) -> str:
    """A short direction label, e.g. ``"view 3: yaw +90°, pitch +0°"`` (``global`` for the ERP)."""
    if view.kind == "global":
        return "panorama overview"
    return f"yaw {view.yaw_deg:+.0f}°, pitch {view.pitch_deg:+.0f}°"


def chat_messages(n_views: int, query: str, labels: Sequence[str] | None = None) -> list[dict]:
    """One user turn: an image entry per view (each after its label, if any), then the query."""
    content: list[dict] = []
    for k in range(n_views):
        if labels is not None:
            content.append({"type": "text", "text": f"{labels[k]}:"})
        content.append({"type": "image"})
    content.append({"type": "text", "text": query})
    return [{"role": "user", "content": content}]


def view_arrays(views: torch.Tensor) -> list[np.ndarray]:
    """Views ``(V, 3, h, w)`` (uint8, or float in ``[0, 1]``) -> V ``(h, w, 3)`` uint8 arrays (what
    processors take)."""
    u8 = unit_uint8(views).permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(v) for v in u8]


class AdapterCollate:
    """``list[PanoSample] -> batch`` for ``PanoAdaptModel`` (processor outputs + labels)."""

    def __init__(
        self,
        processor,
        *,
        image_token_id: int,
        end_of_turn: str,
        max_text_length: int,
        train: bool,
        views: Sequence[ViewMeta] | None = None,
        view_labels: bool = False,
    ) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_token_id = image_token_id
        self.end_of_turn = end_of_turn
        self.budget = TextBudget(max_text_length)
        self.train = train
        self.labels = [view_label(v) for v in views] if (view_labels and views) else None

    def messages(self, sample: PanoSample) -> list[dict]:
        """The chat turn of ``sample`` (see :func:`chat_messages`)."""
        return chat_messages(sample.views.shape[0], sample.query, self.labels)

    def _text_tokens(self, text: str) -> int:
        """Tokens of ``text`` other than image placeholders (those are not text)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return sum(1 for i in ids if i != self.image_token_id)

    def _tail(self, answer: str, prompt_text_tokens: int) -> str:
        """``answer`` + end of turn, cut to the text budget the prompt leaves."""
        text = answer + self.end_of_turn
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        kept = self.budget.fit_answer(ids, prompt_text_tokens)
        return text if len(kept) == len(ids) else self.tokenizer.decode(kept)

    def __call__(self, samples: Sequence[PanoSample]) -> dict:
        prompts = [
            self.processor.apply_chat_template(self.messages(s), add_generation_prompt=True)
            for s in samples
        ]
        images = [view_arrays(s.views) for s in samples]
        prompt_len = [self._text_tokens(p) for p in prompts]
        for n, s in zip(prompt_len, samples, strict=True):
            self.budget.check_prompt(n, s.query)
        texts, answer_len = prompts, [0] * len(samples)
        if self.train:
            tails = [
                self._tail(s.answer or "", n) for s, n in zip(samples, prompt_len, strict=True)
            ]
            texts = [p + t for p, t in zip(prompts, tails, strict=True)]
            answer_len = [
                len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in tails
            ]
        # Explicit padding side: processors carry their own default (InternVL's pads left) that
        # overrides the tokenizer's. No special tokens: the chat template already wrote them
        # (Gemma3's tokenizer would add a second <bos>).
        batch = dict(
            self.processor(
                images=[np.ascontiguousarray(i) for i in images],
                text=texts,
                padding=True,
                padding_side="right" if self.train else "left",
                add_special_tokens=False,
                return_tensors="pt",
            )
        )
        if self.train:
            batch["labels"] = _answer_labels(
                batch["input_ids"], batch["attention_mask"], answer_len
            )
        batch["urls"] = [s.url for s in samples]
        batch["queries"] = [s.query for s in samples]
        batch["references"] = [s.references for s in samples]
        return batch


def _answer_labels(
    input_ids: torch.Tensor, mask: torch.Tensor, answer_len: list[int]
) -> torch.Tensor:
    """Labels = input ids on the last ``answer_len[b]`` real tokens of each row ``(B, L)``.

    The end of a row is its last unmasked position, so left and right padding both work.
    """
    width = input_ids.shape[1]
    end = width - mask.flip(1).argmax(1, keepdim=True)  # (B, 1) one past the last real token
    pos = torch.arange(width)[None]  # (1, L)
    keep = (pos < end) & (pos >= end - torch.tensor(answer_len)[:, None])
    return torch.where(keep, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
