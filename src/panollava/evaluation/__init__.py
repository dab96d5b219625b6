"""Evaluation of query-based panorama captions (QuIC-360).

* :mod:`~panollava.evaluation.metrics`: BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D, SPICE via
  pycocoevalcap (PTB tokenizer); :mod:`~panollava.evaluation.javatools` drives its jars.
* :mod:`~panollava.evaluation.samples`: the ``grouped`` and ``per_row`` protocols.
* :mod:`~panollava.evaluation.scoring`: prediction files -> run folder (metrics.json,
  per_sample.csv, bootstrap CIs); :mod:`~panollava.evaluation.compare`: tables, paired tests.
* :mod:`~panollava.evaluation.report`, :mod:`~panollava.evaluation.baseline` (blind baseline),
  :mod:`~panollava.evaluation.judge` (LLM judge), :mod:`~panollava.evaluation.commands` (CLI).

Submodules are imported on first use so that the CLI starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "score_captions": "metrics",
    "CaptionScores": "metrics",
    "score_files": "scoring",
    "load_run_dir": "scoring",
    "compare_markdown": "compare",
    "write_report": "report",
    "run_blind_baseline": "baseline",
    "judge_items": "judge",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"panollava.evaluation.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'panollava.evaluation' has no attribute {name!r}")
