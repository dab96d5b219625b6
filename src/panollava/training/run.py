"""Run folders and the stage plan: ``runs/<experiment>/<timestamp>/`` with everything a run needs.

Layout of a run folder::

    config.yaml                  resolved config (file + overrides + defaults)
    stages.json                  which stages finished, with their step counts and weights
    <stage>/last.ckpt            Lightning checkpoint (trainable tensors + optimiser) for resume
    <stage>/weights.safetensors  trainable weights at the end of the stage
    logs/                        CSV (always), TensorBoard / W&B when configured
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from panollava.config import PanoConfig, save_config

__all__ = ["RunState", "StageRecord", "find_latest_run", "new_run_dir"]


@dataclass
class StageRecord:
    name: str
    status: str = "pending"  # pending | running | done
    steps: int = 0
    weights: str | None = None
    seconds: float = 0.0


@dataclass
class RunState:
    """``stages.json`` of a run folder: the single record of progress (written atomically)."""

    run_dir: Path
    stages: list[StageRecord] = field(default_factory=list)
    writable: bool = True  # False on non-zero distributed ranks

    @classmethod
    def load(cls, run_dir: Path, stage_names: list[str]) -> RunState:
        path = run_dir / "stages.json"
        if not path.exists():
            return cls(run_dir, [StageRecord(n) for n in stage_names])
        data = json.loads(path.read_text())
        records = {r["name"]: StageRecord(**r) for r in data["stages"]}
        unknown = sorted(set(records) - set(stage_names))
        if unknown:
            raise ValueError(f"{path} records stages {unknown} that the config does not define")
        return cls(run_dir, [records.get(n, StageRecord(n)) for n in stage_names])

    def save(self) -> None:
        if not self.writable:
            return
        path = self.run_dir / "stages.json"
        tmp = path.with_suffix(".tmp")
        payload = {"stages": [asdict(r) for r in self.stages]}
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(path)

    def record(self, name: str) -> StageRecord:
        return next(r for r in self.stages if r.name == name)

    def finished(self) -> list[str]:
        """Names of the finished stages, in stage order."""
        return [r.name for r in self.stages if r.status == "done"]


def new_run_dir(cfg: PanoConfig, root: Path | None = None) -> Path:
    """Create ``<output_dir>/<experiment>/<timestamp>/`` and write the resolved config there."""
    base = Path(root or cfg.output_dir) / cfg.experiment
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = base / stamp
    k = 1
    while run_dir.exists():
        run_dir = base / f"{stamp}-{k}"
        k += 1
    run_dir.mkdir(parents=True)
    save_config(cfg, run_dir / "config.yaml")
    return run_dir


def find_latest_run(cfg: PanoConfig, root: Path | None = None) -> Path:
    """The newest run folder of ``cfg.experiment`` (for ``--resume`` without a path)."""
    base = Path(root or cfg.output_dir) / cfg.experiment
    runs = sorted(p for p in base.glob("*") if (p / "config.yaml").exists())
    if not runs:
        raise FileNotFoundError(f"no run of experiment {cfg.experiment!r} under {base} to resume")
    return runs[-1]
