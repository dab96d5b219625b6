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
