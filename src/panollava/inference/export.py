"""``export_run``: a trained run as standard folder(s) that load without training code."""

from __future__ import annotations

from pathlib import Path

from panollava.inference.run import load_run

__all__ = ["export_run"]


def export_run(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Export a trained run folder (every finished stage applied, LoRA merged).

    The System decides the layout (:meth:`panollava.models.base.System.export`): PanoAdapt
    writes one HF folder of its family's class; PanoLLaVA its HF parts plus its own heads.
    """
    run = load_run(run_dir)
    extra = {"source_run": str(Path(run_dir).resolve()), "experiment": run.cfg.experiment}
    return run.system.export(Path(out_dir), extra)
