"""Fixtures of the data tests: a small synthetic dataset and the loopback HTTP server."""

from __future__ import annotations

from pathlib import Path

import pytest
from loopback_server import LoopbackServer

from panollava.data.synth import synthesize

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO / ".." / "shared").resolve()


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """Ten synthetic panoramas at 256x128 (train 8, valid 1, test 1) plus their tokenizer."""
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, n=10, seed=3, width=256)
    return out


@pytest.fixture
def server():
    with LoopbackServer(slow_s=2.0) as srv:
        yield srv
