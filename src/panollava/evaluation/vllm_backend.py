"""Optional vLLM generation backend for PanoAdapt runs (``panollava eval ... --backend vllm``).

vLLM serves a standard HF folder, so the run is first exported (LoRA merged, see
:func:`panollava.inference.export.export_run`) to ``RUN/export``. Prompts are the chat turns the
transformers path builds (:func:`~panollava.models.adapters.collate.chat_messages`: one image
per view, optional view labels, the query) and the images are the same views, so both backends answer the same
question. Refused, with the reason, for:

* PanoLLaVA runs (a custom architecture vLLM does not know);
* PanoRoPE runs (vLLM computes its own position ids, which would silently differ from training);
* machines without vLLM (``pip install vllm``; it needs CUDA).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AutoProcessor

from panollava.config import PanoConfig
from panollava.data.sample import PanoSample
from panollava.models.adapters.collate import chat_messages, view_arrays, view_label
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig

__all__ = ["VLLMPredictor", "VLLMUnavailableError", "check_vllm_supported"]


class VLLMUnavailableError(RuntimeError):
    """vLLM cannot serve this run here (not installed, or the run needs what vLLM lacks)."""


def check_vllm_supported(cfg: PanoConfig) -> None:
    """Raise :class:`VLLMUnavailableError` naming why ``cfg``'s model cannot run on vLLM."""
    model = cfg.model
    if model is None or model.system != "panoadapt":
        raise VLLMUnavailableError(
            "the vLLM backend serves PanoAdapt family models; PanoLLaVA is a custom architecture: "
            "use --backend transformers"
        )
    if model.panorope:
        raise VLLMUnavailableError(
            "this run uses PanoRoPE (model.panorope=true); vLLM computes its own position ids, "
            "so its answers would not be the trained model's: use --backend transformers"
        )
    if cfg.views.strategy == "native":
        raise VLLMUnavailableError(
            "views.strategy=native sends the ERP through the processor's own resizing; the vLLM "
            "backend sends panollava's views: use --backend transformers"
        )


def import_vllm():
    try:
        import vllm  # optional back end: installed by users who pick --backend vllm
    except ImportError:
        raise VLLMUnavailableError(
            "vLLM is not installed: `pip install vllm` on a CUDA machine, or use the default "
            "--backend transformers"
        ) from None
    return vllm


class VLLMPredictor:
    """``answer_many(questions)`` like :class:`panollava.inference.Predictor`, on vLLM.

    ``export_dir`` is a folder written by ``panollava export`` (it holds ``panorama.json``).
    """

    def __init__(
        self,
        export_dir: str | Path,
        *,
        max_new_tokens: int = 128,
        view_labels: bool = False,
        llm_kwargs: dict[str, Any] | None = None,
    ) -> None:

        vllm = import_vllm()
        export_dir = Path(export_dir)
        meta = json.loads((export_dir / "panorama.json").read_text())
        if meta.get("panorope"):
            raise VLLMUnavailableError(f"{export_dir} was trained with PanoRoPE (see above)")
        views = ViewsConfig.model_validate(meta["views"])
        layout = make_layout(views)
        self.views, self.layout = views, layout
        self.processor = AutoProcessor.from_pretrained(export_dir)
        self.labels = [view_label(v) for v in layout.views] if view_labels else None
        self.llm = vllm.LLM(
            model=str(export_dir),
            limit_mm_per_prompt={"image": len(layout.views)},
            **(llm_kwargs or {}),
        )
        self.params = vllm.SamplingParams(temperature=0.0, max_tokens=max_new_tokens)

    def requests(self, questions: Sequence[Any]) -> list[dict[str, Any]]:
        """vLLM prompt dicts: the chat-templated text and the views as PIL images."""

        out = []
        for q in questions:
            turn = chat_messages(q.views.shape[0], q.query, self.labels)
            text = self.processor.apply_chat_template(
                turn, add_generation_prompt=True, tokenize=False
            )
            images = [Image.fromarray(a) for a in view_arrays(q.views)]
            out.append({"prompt": text, "multi_modal_data": {"image": images}})
        return out

    def prompt_overhead(self, image_size: tuple[int, int] | None = None) -> int:
        """Prompt tokens besides the query's own (image tokens and chat template), as the
        export's processor counts them; token budgets count them. ``image_size``: the ERP's
        ``(height, width)`` for ``native`` (see :meth:`panollava.inference.Predictor.prompt_overhead`)."""
        t = self.views.tile_size
        shape = (len(self.layout.views), 3, t, t)
        if self.layout.native:
            shape = (1, 3, *(image_size or (t, 2 * t)))
        request = self.requests([PanoSample(torch.zeros(shape), "x")])[0]
        ids = self.processor(text=[request["prompt"]], images=request["multi_modal_data"]["image"])[
            "input_ids"
        ]
        own = len(self.processor.tokenizer("x", add_special_tokens=False)["input_ids"])
        return len(ids[0]) - own

    def answer_many(self, questions: Sequence[Any]) -> list[str]:
        outputs = self.llm.generate(self.requests(questions), self.params, use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outputs]
