"""Batches for the custom PanoLLaVA model: chat prompt with K vision placeholders + views.

Prompt (system-free ChatML, or the tokenizer's own chat template when it has one)::

    <|im_start|>user\\n<|vision|>{query}<|im_end|>\\n<|im_start|>assistant\\n{answer}<|im_end|>

The single ``<|vision|>`` becomes ``num_image_tokens`` placeholder ids (the model splices the
view embeddings there). Labels cover the answer tokens and the end token only (-100 elsewhere).
``max_text_length`` counts text tokens only (image placeholders excluded): a too-long answer
is truncated (logged; its end token is then dropped), the prompt and the image tokens never
are — a prompt that alone does not fit is an error. Training batches are right-padded;
generation batches (``train=False``) are left-padded prompts ending with the assistant header.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from jinja2 import Template

from panollava.views import unit_float

__all__ = ["CHATML_TEMPLATE", "VISION_TOKEN", "PanoCollate", "TextBudget"]

log = logging.getLogger(__name__)

VISION_TOKEN = "<|vision|>"
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IGNORE_INDEX = -100


class SampleLike(Protocol):
    """What the collate reads from a sample (:class:`panollava.data.datasets.PanoSample`)."""

    views: torch.Tensor
    query: str
    answer: str | None
    references: tuple[str, ...]
    url: str


class TextBudget:
    """The one text-length rule of every collate.

    ``max_text_length`` counts text tokens only — the prompt's text plus the answer and its end
    token — never image tokens. A prompt that cannot fit is an error (prompts and image tokens
    are never truncated); a too-long answer is cut to the budget, logged, and counted in
    :attr:`truncated`.
    """

    def __init__(self, max_text_length: int) -> None:
        self.max_text_length = max_text_length
        self.truncated = 0  # answers truncated so far

    def check_prompt(self, text_tokens: int, query: str) -> None:
        if text_tokens > self.max_text_length:
            raise ValueError(
                f"the prompt alone has {text_tokens} text tokens > max_text_length="
                f"{self.max_text_length} (image tokens not counted; query {query!r}): "
                "raise max_text_length — prompts and image tokens are never truncated"
            )

    def fit_answer(self, answer_ids: list[int], prompt_text_tokens: int) -> list[int]:
        """``answer_ids`` (end token included) cut to what the prompt leaves of the budget."""
        budget = self.max_text_length - prompt_text_tokens
        if len(answer_ids) <= budget:
            return answer_ids
        self.truncated += 1
        log.warning(
            "answer of %d tokens truncated to %d (max_text_length=%d, prompt %d text tokens; "
            "%d answers truncated so far)",
            len(answer_ids),
            budget,
            self.max_text_length,
            prompt_text_tokens,
            self.truncated,
        )
        return answer_ids[:budget]


def _stack_views(views: list[torch.Tensor]) -> torch.Tensor:
    """Views ``(V, 3, h, w)`` -> ``(B, V, 3, h, w)``, in their kind (uint8 levels stay uint8:
    4x less to move to the GPU); float in ``[0, 1]`` when the batch mixes kinds."""
    if len({v.dtype for v in views}) > 1:
        views = [unit_float(v) for v in views]
    return torch.stack(views)


class PanoCollate:
    """``list[PanoSample] -> dict`` of ``pixel_values (B, V, 3, h, w)`` (uint8 or float in
    ``[0, 1]``, as the samples' views), ``input_ids``,
    ``attention_mask``, ``labels`` (``(B, L)``; labels ``None`` when ``train=False``) and the
    ``urls``, ``queries``, ``references`` lists."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        num_image_tokens: int,
        max_text_length: int,
        train: bool = True,
        vision_token: str = VISION_TOKEN,
        end_token: str | None = None,
    ) -> None:
        if num_image_tokens < 1:
            raise ValueError(f"num_image_tokens must be >= 1, got {num_image_tokens}")
        self.tokenizer = tokenizer
        self.num_image_tokens = num_image_tokens
        self.max_text_length = max_text_length
        self.budget = TextBudget(max_text_length)
        self.train = train
        self.vision_token = vision_token
        self.vision_id = self._token_id(vision_token, "vision placeholder")
        self.end_id = self._token_id(end_token or self._default_end(), "end")
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else tokenizer.eos_token_id
        if self.pad_id is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token to pad with")

    def _default_end(self) -> str:
        """``<|im_end|>`` for ChatML tokenizers, else the tokenizer's eos token."""
        vocab = self.tokenizer.get_vocab()
        if "<|im_end|>" in vocab:
            return "<|im_end|>"
        if self.tokenizer.eos_token is None:
            raise ValueError("no <|im_end|> and no eos token: pass end_token")
        return self.tokenizer.eos_token

    def _token_id(self, token: str, what: str) -> int:
        ids = self.tokenizer.convert_tokens_to_ids([token])
        unk = self.tokenizer.unk_token_id
        if not ids or ids[0] is None or (ids[0] == unk and token != self.tokenizer.unk_token):
            raise ValueError(f"{what} token {token!r} is not in the tokenizer's vocabulary")
        return int(ids[0])

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, query: str) -> list[int]:
        """Prompt ids with the single placeholder expanded to ``num_image_tokens`` ids."""
        messages = [{"role": "user", "content": f"{self.vision_token}{query}"}]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        else:
            text = Template(CHATML_TEMPLATE).render(messages=messages, add_generation_prompt=True)
        ids = self._encode(text)
        at = [i for i, t in enumerate(ids) if t == self.vision_id]
        if len(at) != 1:
            raise ValueError(
                f"the prompt must hold exactly one vision placeholder, found {len(at)} "
                f"(does the query contain the placeholder text?): {text!r}"
            )
        k = at[0]
        return ids[:k] + [self.vision_id] * self.num_image_tokens + ids[k + 1 :]

    def _sequence(self, sample: SampleLike) -> tuple[list[int], int]:
        """(ids, number of trailing label tokens) of one sample within the text budget."""
        prompt = self.prompt_ids(sample.query)
        text_len = len(prompt) - self.num_image_tokens  # text tokens of the prompt
        self.budget.check_prompt(text_len, sample.query)
        if not self.train:
            return prompt, 0
        if sample.answer is None:
            raise ValueError(f"training sample {sample.url!r} has no answer")
        answer = self.budget.fit_answer([*self._encode(sample.answer), self.end_id], text_len)
        return prompt + answer, len(answer)

    def _pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad to ``(B, L)`` ids and mask: right for training, left for generation."""
        length = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for b, s in enumerate(seqs):
            span = slice(0, len(s)) if self.train else slice(length - len(s), length)
            ids[b, span] = torch.tensor(s, dtype=torch.long)
            mask[b, span] = 1
        return ids, mask

    def __call__(self, samples: Sequence[SampleLike]) -> dict[str, Any]:
        if not samples:
            raise ValueError("empty batch")
        sizes = {tuple(s.views.shape) for s in samples}
        if len(sizes) != 1:
            raise ValueError(
                f"views of different shapes in one batch {sorted(sizes)}: the strategy must "
                "give fixed-size views (native resolution cannot be batched)"
            )
        built = [self._sequence(s) for s in samples]
        input_ids, attention_mask = self._pad([ids for ids, _ in built])
        labels = None
        if self.train:
            labels = torch.full_like(input_ids, IGNORE_INDEX)
            for b, (ids, n_label) in enumerate(built):
                answer = slice(len(ids) - n_label, len(ids))  # right padding: ids start at 0
                labels[b, answer] = input_ids[b, answer]
        return {
            "pixel_values": _stack_views([s.views for s in samples]),  # (B, V, 3, h, w)
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "urls": [s.url for s in samples],
            "queries": [s.query for s in samples],
            "references": [list(s.references) for s in samples],
        }
