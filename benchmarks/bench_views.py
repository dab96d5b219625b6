"""Decode + anyres_e2p (1 global + 8 tiles of 256²): panollava vs py360convert, same run.

    .venv/bin/python benchmarks/bench_views.py [--repeats 5] [--device cuda]

For each panorama (the 6 shared QuIC-360 samples, plus a 2048x1024 and a 4096x2048 JPEG made
from one of them) it times, end to end from the JPEG file:

* **py360convert**, as a user would call it: decode the full image with PIL, ``e2p`` once per
  tile, and a PIL resize for the global view;
* **panollava**: ``load_erp`` (reduced-scale JPEG decoding when the views need fewer pixels;
  with ``--device cuda`` nvJPEG decoding on the GPU) + ``build_viewset`` (one batched
  ``grid_sample`` with cached grids).

It prints per-panorama times, the speed ratio, our JPEG decode time alone and the ratio it caps
us at (``ceiling`` = py360convert time / our decode time: the speed-up if sampling were free),
and the max/mean absolute pixel difference of
the tiles (uint8 levels): once for the end-to-end outputs (draft decoding changes the source
pixels, so small differences are expected) and once with both sampling the same full-resolution
decode (the geometry check: should be ~0.25, i.e. rounding).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import py360convert
import torch
from PIL import Image

from panollava.data.images import decode_image, load_erp
from panollava.data.schema import ImageConfig
from panollava.views import build_viewset, make_layout, required_erp_width
from panollava.views.schema import ViewsConfig

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "quic360_samples"


def py360_views(path: Path, cfg: ViewsConfig) -> np.ndarray:
    """What a user writes with py360convert: full decode, e2p per tile, resize for the global."""
    img = np.asarray(Image.open(path).convert("RGB"))
    layout = make_layout(cfg)
    out = []
    for v in layout.views:
        if v.kind == "global":
            g = Image.fromarray(img).resize(
                (cfg.tile_size, cfg.tile_size), Image.Resampling.BILINEAR
            )
            out.append(np.asarray(g))
        else:
            size = (cfg.tile_size, cfg.tile_size)
            out.append(py360convert.e2p(img, v.hfov_deg, v.yaw_deg, v.pitch_deg, size))
    return np.stack(out)  # (V, h, w, 3) uint8


def ours_views(
    path: Path, cfg: ViewsConfig, image_cfg: ImageConfig, device: str = "cpu"
) -> torch.Tensor:
    """``load_erp`` (on CUDA: nvJPEG decode) + ``build_viewset``, finished when it returns."""
    cuda = device.startswith("cuda")
    need = required_erp_width(cfg) if image_cfg.draft_decode else None
    erp = load_erp(path, cfg=image_cfg, min_width=need, device=device if cuda else None)
    pixels = build_viewset(erp, cfg).pixels  # (V, 3, h, w) float
    if cuda:
        torch.cuda.synchronize()
    return pixels


def decode_only(path: Path, image_cfg: ImageConfig, cfg: ViewsConfig, device: str) -> None:
    """Our decoding step alone (the floor of ``ours_views``)."""
    if device.startswith("cuda"):
        load_erp(path, cfg=image_cfg, min_width=required_erp_width(cfg), device=device)
        torch.cuda.synchronize()
    else:
        decode_image(path, cfg=image_cfg, min_width=required_erp_width(cfg))


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    return (pixels.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) if repeats < 3 else statistics.median(times)


def make_inputs(tmp: Path) -> list[Path]:
    paths = sorted(SAMPLES.glob("img_*.jpg"))
    if not paths:
        raise SystemExit(f"no panoramas found in {SAMPLES}")
    src = Image.open(paths[0]).convert("RGB")
    for w in (2048, 4096):
        p = tmp / f"synthetic_{w}x{w // 2}.jpg"
        src.resize((w, w // 2), Image.Resampling.LANCZOS).save(p, quality=92)
        paths.append(p)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--device", default="cpu", help="cuda: decode with nvJPEG and sample on the GPU"
    )
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda needs a CUDA GPU (none here)")
    dev = args.device
    cfg = ViewsConfig()  # anyres_e2p: 1 global + 8 x 90° tiles, 256²
    image_cfg = ImageConfig()
    tiles = [v.index for v in make_layout(cfg).tiles]
    backend = "cv2.remap" if getattr(py360convert.utils, "cv2", None) else "scipy map_coordinates"
    print(
        f"device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}, py360convert "
        f"{getattr(py360convert, '__version__', '?')} (sampling with {backend}; it switches to "
        "cv2.remap, ~2x faster, when opencv is installed)"
    )
    print(
        f"{'panorama':34s} {'size':>10s} {'py360 ms':>9s} {'ours ms':>8s} {'ratio':>6s} "
        f"{'decode ms':>9s} {'ceiling':>7s} {'e2e max/mean':>13s} {'geom max/mean':>14s}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for path in make_inputs(Path(tmp)):
            w, h = Image.open(path).size
            ours_views(path, cfg, image_cfg, dev)  # warm the grid cache, as in a data loader
            t_ref = best_time(lambda p=path: py360_views(p, cfg), args.repeats)
            t_ours = best_time(lambda p=path: ours_views(p, cfg, image_cfg, dev), args.repeats)
            t_dec = best_time(lambda p=path: decode_only(p, image_cfg, cfg, dev), args.repeats)
            ref = py360_views(path, cfg)[tiles].astype(np.float32)
            e2e = np.abs(to_uint8(ours_views(path, cfg, image_cfg, dev))[tiles] - ref)
            full = ImageConfig(draft_decode=False)
            geom = np.abs(to_uint8(ours_views(path, cfg, full, dev))[tiles] - ref)
            print(
                f"{path.name:34s} {w:>5d}x{h:<4d} {1e3 * t_ref:9.1f} {1e3 * t_ours:8.1f} "
                f"{t_ref / t_ours:5.1f}x {1e3 * t_dec:9.1f} {t_ref / t_dec:6.1f}x "
                f"{e2e.max():6.0f}/{e2e.mean():<6.2f} "
                f"{geom.max():6.0f}/{geom.mean():<6.2f}"
            )


if __name__ == "__main__":
    main()
