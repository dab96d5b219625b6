"""Provenance of an evaluation: a fingerprint of everything that shapes its predictions.

``eval/<split>/fingerprint.json`` is written before the first prediction; a later ``eval`` on
the same folder resumes only when its fingerprint is identical, otherwise it stops and names
what differs (``--overwrite`` starts again). The fingerprint holds:

* ``weights``: sha256 of every applied stage's trainable weights (``[]``: zero-shot);
* ``model``, ``views``, ``image``, ``data``: the config sections that decide the inputs;
* ``tables``: sha256 of each test table's bytes;
* ``generation``: decoding settings (``max_new_tokens``, backend, device type, dtype, limit).

Batch size, token budget and sharding are left out: they change the order of work, not the
answers (each row is a greedy decode of its own prompt).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from panollava.config import PanoConfig
from panollava.fileutil import sha256_file
from panollava.training.run import RunState

__all__ = [
    "FINGERPRINT_FILE",
    "ProvenanceError",
    "claim_folder",
    "eval_fingerprint",
    "fingerprint_diff",
]

FINGERPRINT_FILE = "fingerprint.json"
FORMAT = "panollava-eval/1"


class ProvenanceError(RuntimeError):
    """Existing predictions were made by something else than this evaluation."""


def eval_fingerprint(
    cfg: PanoConfig, run_dir: Path, *, split: str, generation: dict[str, Any]
) -> dict[str, Any]:
    """The fingerprint of evaluating ``split`` of ``run_dir`` with ``cfg`` and ``generation``."""
    state = RunState.load(run_dir, [s.name for s in cfg.train.stages])
    weights = {r.name: sha256_file(run_dir / r.weights) for r in state.stages if r.status == "done"}
    data = cfg.data.model_dump(mode="json", include={"image_root", "cache_dir", "columns"})
    return {
        "format": FORMAT,
        "split": split,
        "weights": weights,
        "model": cfg.model.model_dump(mode="json") if cfg.model is not None else None,
        "views": cfg.views.model_dump(mode="json"),
        "image": cfg.image.model_dump(mode="json"),
        "data": data,
        "tables": {str(p): sha256_file(p) for p in getattr(cfg.data, split)},
        "generation": generation,
    }


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out if tree else {prefix: {}}
    return {prefix: tree}


def fingerprint_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every dotted key whose value differs."""
    a, b = _flatten(old), _flatten(new)
    return [
        f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}"
        for key in sorted(set(a) | set(b))
        if a.get(key, "<absent>") != b.get(key, "<absent>")
    ]


def _predictions(out: Path) -> list[Path]:
    return sorted(out.glob("predictions*.csv"))


def claim_folder(out: Path, fingerprint: dict[str, Any], *, overwrite: bool = False) -> None:
    """Make ``out`` hold predictions of exactly ``fingerprint`` (or none yet).

    A folder with predictions and a different (or no) fingerprint raises
    :class:`ProvenanceError` naming the differences; ``overwrite`` deletes the old predictions,
    scores and fingerprint first.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / FINGERPRINT_FILE
    old = json.loads(path.read_text()) if path.is_file() else None
    existing = _predictions(out)
    if overwrite:
        for stale in [*existing, path, out / "metrics.json", out / "per_sample.csv"]:
            stale.unlink(missing_ok=True)
    elif existing and old != fingerprint:
        if old is None:
            why = f"{path.name} is missing (made by an older version or another tool)"
        else:
            why = "what differs:\n  " + "\n  ".join(fingerprint_diff(old, fingerprint))
        raise ProvenanceError(
            f"{out} holds predictions made by a different evaluation; {why}\n"
            "Evaluate into another run folder, or pass --overwrite to discard them and start "
            "again."
        )
    tmp = path.with_suffix(f".tmp{id(fingerprint)}")
    tmp.write_text(json.dumps(fingerprint, indent=2, sort_keys=True))
    tmp.replace(path)
