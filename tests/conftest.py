"""Shared test fixtures: paths to the shared real data and small helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
SAMPLES = SHARED / "data" / "quic360_samples"
QUIC360 = SHARED / "data" / "quic360"


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests skip (with the reason shown) when CUDA is absent."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (no GPU on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sample_images() -> list[Path]:
    images = sorted(SAMPLES.glob("img_*.jpg"))
    assert len(images) == 6, f"expected the 6 shared panoramas in {SAMPLES}"
    return images


def _train_tiny(tmp: Path, recipe: str, overrides: list[str], *, tokenizer: bool) -> Path:
    """Synthesize a small data set and train ``recipe`` briefly; returns the run folder."""
    from panollava.config import load_config
    from panollava.data.synth import synthesize
    from panollava.models.build import build_system
    from panollava.training.trainer import run_training

    data = tmp / "data"
    synthesize(data, n=30, seed=5, width=256, tokenizer=tokenizer)
    cfg = load_config(
        REPO / "configs" / recipe,
        [
            f"data.train=[{data / 'train.tsv'}]",
            f"data.valid=[{data / 'valid.tsv'}]",
            f"data.test=[{data / 'test.tsv'}]",
            f"output_dir={tmp / 'runs'}",
            *overrides,
        ],
    )
    return run_training(cfg, build_system(cfg))


@pytest.fixture(scope="session")
def panollava_run(tmp_path_factory) -> Path:
    """A tiny PanoLLaVA run folder, all three stages finished (a few steps each)."""
    tmp = tmp_path_factory.mktemp("panollava_run")
    steps = [
        f"train.stages.{i}.{k}={v}"
        for i in range(3)
        for k, v in (("max_steps", 2), ("batch_size", 2))
    ]
    return _train_tiny(
        tmp,
        "panollava/tiny.yaml",
        [f"model.tokenizer={tmp / 'data' / 'tokenizer'}", *steps],
        tokenizer=True,
    )


@pytest.fixture(scope="session")
def panoadapt_run(tmp_path_factory) -> Path:
    """A tiny PanoAdapt (Qwen2.5-VL stand-in) run folder: one LoRA stage of two steps."""
    tmp = tmp_path_factory.mktemp("panoadapt_run")
    return _train_tiny(
        tmp,
        "panoadapt_tiny/qwen2_5_vl_tiny.yaml",
        ["train.stages.0.max_steps=2", "train.stages.0.batch_size=2"],
        tokenizer=False,
    )
