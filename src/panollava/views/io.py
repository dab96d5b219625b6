"""Writing a ViewSet to disk: ``view_XX.png`` per view and ``views.json`` with the metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from panollava.views.viewset import ViewSet, unit_uint8

__all__ = ["save_viewset"]


def save_viewset(
    viewset: ViewSet, out: str | Path, *, source: str | Path | None = None, erp_hw=None
) -> Path:
    """Write each view as ``view_XX.png`` and the layout as ``views.json``; returns the json path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pixels = unit_uint8(viewset.pixels).cpu()  # (V, 3, h, w) uint8
    files = []
    for k, view in enumerate(pixels):
        name = f"view_{k:02d}.png"
        Image.fromarray(np.ascontiguousarray(view.permute(1, 2, 0).numpy())).save(out / name)
        files.append(name)
    meta = viewset.to_json()
    for entry, name in zip(meta["views"], files, strict=True):
        entry["file"] = name
    meta["conventions"] = (
        "degrees; yaw 0 = ERP centre, positive yaw looks right, positive pitch looks up, "
        "roll as py360convert in_rot_deg (same as py360convert.e2p u_deg/v_deg)"
    )
    if source is not None:
        meta["source"] = str(source)
    if erp_hw is not None:
        meta["decoded_erp_hw"] = list(erp_hw)
    path = out / "views.json"
    path.write_text(json.dumps(meta, indent=2))
    return path
