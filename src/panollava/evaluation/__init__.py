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

from panollava._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "CaptionScores": "metrics",
        "compare_markdown": "compare",
        "judge_items": "judge",
        "load_run_dir": "scoring",
        "run_blind_baseline": "baseline",
        "score_captions": "metrics",
        "score_files": "scoring",
        "write_report": "report",
    },
)
