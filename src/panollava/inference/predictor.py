"""One way to answer queries about panoramas, shared by ``infer``, ``serve`` and ``eval``.

A :class:`Predictor` pairs a built System (PanoLLaVA or a PanoAdapt family) with the views and
image settings it was trained with, so a panorama is cut exactly as in training::

    predictor = Predictor.from_run("runs/tiny/20261201-120000")      # a trained run
    predictor = Predictor.from_family("qwen2_5_vl")                   # an off-the-shelf VLM
    erp, viewset = predictor.load("pano.jpg")
    print(predictor.answer(viewset, "What is on the left of the door?"))
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from panollava.config import PanoConfig
from panollava.data.images import load_views
from panollava.data.sample import PanoSample
from panollava.data.schema import ImageConfig
from panollava.inference.run import load_run
from panollava.models.adapters.families import PrecisionError
from panollava.models.adapters.loading import load_adapter
from panollava.models.adapters.schema import PanoAdaptConfig
from panollava.models.adapters.system import PanoAdaptSystem
from panollava.models.base import System
from panollava.models.panollava.system import HEADS_FILE, load_panollava_export
from panollava.views import ViewSet, make_layout
from panollava.views.schema import ViewsConfig

__all__ = ["Predictor", "resolve_device", "resolve_dtype"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: this process's GPU (``cuda:$LOCAL_RANK`` under torchrun) if any, else CPU."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``auto``: bfloat16 on GPUs that support it, float32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


class Predictor:
    """Greedy answers from a System (``eval_collate`` + ``generate`` + ``tokenizer``).

    The model is moved to ``device`` in ``dtype`` (``auto``: the GPU in bfloat16 when there is
    one, else CPU float32); every batch follows it.
    """

    def __init__(
        self,
        cfg: PanoConfig,
        system: System,
        *,
        max_new_tokens: int = 128,
        name: str = "",
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
    ) -> None:
        self.cfg = cfg
        self.system = system
        self.max_new_tokens = max_new_tokens
        self.name = name or cfg.experiment
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        if self.dtype == torch.float16 and not system.allow_fp16:
            raise PrecisionError(
                f"{self.name}: this model is bf16-only (fp16 overflows); use --dtype bfloat16 "
                "or float32"
            )
        system.model.to(device=self.device, dtype=self.dtype)
        system.model.eval()
        self._collate = system.eval_collate()

    # ---------------------------------------------------------------- building
    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        cfg: PanoConfig | None = None,
        *,
        allow_untrained: bool = False,
        max_new_tokens: int = 128,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
    ) -> Predictor:
        """The model of a ``panollava train`` run folder (:func:`~panollava.inference.run.load_run`:
        every finished stage's weights; ``allow_untrained`` for a zero-shot evaluation)."""
        run = load_run(run_dir, cfg, allow_untrained=allow_untrained)
        return cls(
            run.cfg,
            run.system,
            max_new_tokens=max_new_tokens,
            name=run.name,
            device=device,
            dtype=dtype,
        )

    @classmethod
    def open(
        cls,
        run: Path | None,
        family: str,
        model: str | None,
        size: int,
        max_new_tokens: int,
        *,
        tiny_corpus: list[str] | None = None,
        device: str = "auto",
        dtype: str = "auto",
    ) -> Predictor:
        """What ``infer``/``serve`` answer with: ``--run`` or ``--family/--model`` (tile ``size``)."""
        if run is not None:
            return cls.from_run(run, max_new_tokens=max_new_tokens, device=device, dtype=dtype)
        if model is not None and (Path(model) / HEADS_FILE).is_file():
            return cls.from_panollava_export(
                model, max_new_tokens=max_new_tokens, device=device, dtype=dtype
            )
        return cls.from_family(
            family,
            model,
            views=ViewsConfig(tile_size=size),
            max_new_tokens=max_new_tokens,
            tiny_corpus=tiny_corpus,
            device=device,
            dtype=dtype,
        )

    @classmethod
    def from_panollava_export(
        cls,
        export_dir: str | Path,
        *,
        max_new_tokens: int = 128,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
    ) -> Predictor:
        """A PanoLLaVA model written by ``panollava export`` (its views and image settings)."""
        system = load_panollava_export(Path(export_dir))
        return cls(
            system.cfg,
            system,
            max_new_tokens=max_new_tokens,
            name=f"{system.cfg.experiment} (export {Path(export_dir).name})",
            device=device,
            dtype=dtype,
        )

    @classmethod
    def from_family(
        cls,
        family: str,
        model: str | None = None,
        *,
        views: ViewsConfig | None = None,
        max_new_tokens: int = 128,
        tiny_corpus: Sequence[str] | None = None,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
    ) -> Predictor:
        """A PanoAdapt family model: HF id, local folder or ``tiny`` (random stand-in).

        A folder written by ``panollava export`` carries ``panorama.json``: its family, views
        and PanoRoPE setting are used (they are what the model was trained with), overriding
        ``family`` and ``views``.
        """
        views = views or ViewsConfig()
        tiny = model == "tiny"
        panorope = False
        meta_file = Path(model) / "panorama.json" if model and not tiny else None
        if meta_file is not None and meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            views = ViewsConfig.model_validate(meta["views"])
            panorope = bool(meta.get("panorope", False))
            family = meta.get("family", family)
        mcfg = PanoAdaptConfig(
            family=family,
            source="tiny" if tiny else "pretrained",
            checkpoint=model,
            panorope=panorope,
        )
        cfg = PanoConfig(experiment=family, views=views, model=mcfg)
        target = resolve_device(device)
        loaded = load_adapter(  # straight in the serving dtype: no float32 copy of a 4B model
            family,
            views,
            checkpoint="tiny" if tiny else mcfg.resolved_checkpoint(),
            tiny_corpus=list(tiny_corpus or ["what is there in the panorama"]),
            dtype=resolve_dtype(dtype, target),
            panorope=panorope,
        )
        name = f"{family} · {model or mcfg.resolved_checkpoint()}"
        return cls(
            cfg,
            PanoAdaptSystem(cfg, loaded),
            max_new_tokens=max_new_tokens,
            name=name,
            device=device,
            dtype=dtype,
        )

    # ----------------------------------------------------------------- answers
    @property
    def views_cfg(self) -> ViewsConfig:
        return self.cfg.views

    @property
    def image_cfg(self) -> ImageConfig:
        return self.cfg.image

    def load(self, image: str | Path) -> tuple[torch.Tensor, ViewSet]:
        """Decode ``image`` (at the resolution the views need) and cut its views."""
        return load_views(image, self.views_cfg, cfg=self.image_cfg)

    @torch.no_grad()
    def answer_many(self, questions: Sequence[PanoSample]) -> list[str]:
        """Answers for a batch of questions (one generate call)."""
        batch = self.to_device(self._collate(list(questions)))
        new = self.system.generate(batch, max_new_tokens=self.max_new_tokens)
        tokenizer = self.system.tokenizer
        return [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]

    def prompt_overhead(self, image_size: tuple[int, int] | None = None) -> int:
        """Prompt tokens besides the query's own: image tokens and chat template. Token budgets
        count them. ``native`` feeds the ERP at its own ``(height, width)`` (``image_size``;
        default ``(tile, 2 tile)``): its token count follows the processor's resize rule, so pass
        the real size for an exact count (a 6006x3003 ERP is 16,290 Qwen2.5-VL tokens)."""
        layout = make_layout(self.views_cfg)
        t = self.views_cfg.tile_size
        native = (1, 3, *(image_size or (t, 2 * t)))
        shape = native if layout.native else (len(layout.views), 3, t, t)
        ids = self._collate([PanoSample(torch.zeros(shape), "x")])["input_ids"]
        own = len(self.system.tokenizer("x", add_special_tokens=False)["input_ids"])
        return int(ids.shape[1]) - own

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Tensors of ``batch`` on the model's device; floating ones (pixels) in its dtype."""
        out = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                dtype = self.dtype if value.is_floating_point() else None
                value = value.to(self.device, dtype=dtype, non_blocking=True)
            out[key] = value
        return out

    def answer(self, viewset: ViewSet, query: str) -> str:
        """The answer to ``query`` about the panorama cut into ``viewset``."""
        return self.answer_many([PanoSample(viewset.pixels, query)])[0]
