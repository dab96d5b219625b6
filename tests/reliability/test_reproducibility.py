"""The same config and seed train to bit-identical weights."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from panollava.config import load_config
from panollava.data.synth import synthesize
from panollava.models.build import build_system
from panollava.training.trainer import run_training

REPO = Path(__file__).resolve().parents[2]


def _train(data: Path, out: Path) -> dict:
    cfg = load_config(
        REPO / "configs" / "panollava" / "tiny.yaml",
        [
            f"data.train=[{data / 'train.tsv'}]",
            f"model.tokenizer={data / 'tokenizer'}",
            f"output_dir={out}",
            "train.stages.0.max_steps=1",
            "train.stages.0.batch_size=2",
        ],
    )
    run = run_training(cfg, build_system(cfg), stages=["vision"])
    return load_file(run / "vision" / "weights.safetensors")


@pytest.mark.slow
def test_two_runs_of_one_config_and_seed_give_bit_identical_weights(tmp_path):
    """The model (resampler, projector, LoRA init) is built after seeding, not before."""
    data = tmp_path / "data"
    synthesize(data, n=6, seed=5, width=256, tokenizer=True)
    first = _train(data, tmp_path / "a")
    second = _train(data, tmp_path / "b")
    assert first.keys() == second.keys() and first
    different = [k for k in first if not (first[k] == second[k]).all()]
    assert different == []
