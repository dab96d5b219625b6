"""The reliability suite: each test is one promise about hostile input or a fault.

Read the test names as the list of promises; every one of them failed before its fix. The
loopback HTTP server of the data tests is shared (``tests/data/loopback_server.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
