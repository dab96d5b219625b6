"""Decode + anyres_e2p views (1 global + 8 tiles): the cost of sampling next to the decode floor.

    .venv/bin/python benchmarks/bench_views.py [--repeats 7] [--threads N] [--device cuda]

For each panorama (the 6 shared QuIC-360 samples, plus 2048x1024 and 4096x2048 JPEGs made from
one of them) it times, from the JPEG file:

* ``decode``: our decode alone — ``decode_erp`` at the reduced JPEG scale the views need
  (``required_erp_width``), embedded ICC profiles converted to sRGB. The physical floor on a CPU.
* ``+views``: that decode plus ``build_viewset`` (9 antialiased views, cached sampling plan;
  uint8 path: ``cv2.remap`` over the pyramid atlas, uint8 views as every consumer takes them:
  the model converts on its device). ``ratio`` = ``+views`` / ``decode`` (goal <= 1.5x). Each
  time is the fastest of ``--repeats`` runs, the two run in turn.
* ``py360``: what a user writes with py360convert: full PIL decode, ``e2p`` per tile, PIL
  resize for the global view, with py360convert's fastest installed backend (``cv2.remap``
  when opencv is importable, else scipy ``map_coordinates``; printed). ``speed-up`` = ``py360``
  / ``+views``.

Geometry checks on the tiles (uint8 levels): ``today`` = max |difference| between our fast
sampler with ``antialias=False`` and the plain float ``grid_sample`` sampler (``sample_erp``)
on the same decode (must be <= 1); ``py360`` = mean |difference| to py360convert, both point
sampling the same full-resolution decode (~0.25 = rounding).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import py360convert
import torch
from PIL import Image

from panollava.data.images import decode_erp, load_erp
from panollava.data.schema import ImageConfig
from panollava.geometry import erp_coords_for_view, sample_erp, sample_views
from panollava.views import build_viewset, make_layout, required_erp_width
from panollava.views.schema import ViewsConfig

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "quic360_samples"


def py360_views(path: Path, cfg: ViewsConfig) -> np.ndarray:
    """What a user writes with py360convert: full decode, e2p per tile, resize for the global."""
    img = np.asarray(Image.open(path).convert("RGB"))
    out = []
    for v in make_layout(cfg).views:
        if v.kind == "global":
            size = (cfg.tile_size, cfg.tile_size)
            out.append(np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR)))
        else:
            size = (cfg.tile_size, cfg.tile_size)
            out.append(py360convert.e2p(img, v.hfov_deg, v.yaw_deg, v.pitch_deg, size))
    return np.stack(out)  # (V, h, w, 3) uint8


def decode(path: Path, cfg: ViewsConfig, device: str) -> torch.Tensor:
    """Our decode step alone (the floor)."""
    need = required_erp_width(cfg)
    if device.startswith("cuda"):
        erp = load_erp(path, min_width=need, device=device)
        torch.cuda.synchronize()
        return erp
    return decode_erp(path, min_width=need)


def decode_and_views(path: Path, cfg: ViewsConfig, device: str) -> torch.Tensor:
    pixels = build_viewset(decode(path, cfg, device), cfg).pixels  # (V, 3, h, w) uint8 on CPU
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return pixels


def timed(*fns, repeats: int) -> list[float]:
    """The fastest of ``repeats`` runs of each function (as ``timeit`` reports), the functions
    run in turn so that each sees the same neighbours: on a shared machine the slower runs
    measure the neighbours, not the code."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, acc in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return [min(t) for t in times]


def geometry_checks(path: Path, cfg: ViewsConfig) -> tuple[float, float]:
    """(max level difference fast vs plain sampler on our decode, mean vs py360convert)."""
    tiles = [v.geometry for v in make_layout(cfg).tiles]
    size = (cfg.tile_size, cfg.tile_size)
    erp = decode_erp(path, min_width=required_erp_width(cfg))[None]  # (1, 3, H, W)
    fast = sample_views(erp, tiles, size, antialias=False)[0]  # (T, 3, h, w) in [0, 255]
    hw = tuple(erp.shape[-2:])
    coords = torch.cat([erp_coords_for_view(g, size, hw)[0] for g in tiles])[None]  # stacked
    plain = sample_erp(erp.float(), coords)[0].unflatten(1, (len(tiles), size[0])).transpose(0, 1)
    today = float((fast.round() - plain.round()).abs().max())
    full = decode_erp(path, cfg=ImageConfig(draft_decode=False))[None]
    ours = sample_views(full, tiles, size, antialias=False)[0].round().clamp(0, 255)
    ref = py360_views(path, cfg)[[v.index for v in make_layout(cfg).tiles]]
    ref_t = torch.from_numpy(ref.astype(np.float32)).permute(0, 3, 1, 2)
    return today, float((ours - ref_t).abs().mean())


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
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="cpu", help="cuda: nvJPEG decode, GPU sampling")
    parser.add_argument("--no-geometry", action="store_true", help="skip the geometry checks")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda needs a CUDA GPU (none here)")
    if args.threads:
        torch.set_num_threads(args.threads)
    dev, cfg = args.device, ViewsConfig()  # anyres_e2p: 1 global + 8 x 90° tiles, 256²
    backend = "cv2.remap" if getattr(py360convert.utils, "cv2", None) else "scipy map_coordinates"
    print(
        f"device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"py360convert {getattr(py360convert, '__version__', '?')} with {backend} "
        f"(its fastest backend installed here), views need an ERP >= {required_erp_width(cfg)} px"
    )
    print(
        f"{'panorama':26s} {'file':>10s} {'decoded':>10s} {'decode':>7s} {'+views':>7s} "
        f"{'ratio':>6s} {'py360':>7s} {'speed-up':>8s} {'plan':>6s} {'today':>5s} {'py360':>6s}"
    )
    print(f"{'':26s} {'':>10s} {'':>10s} {'ms':>7s} {'ms':>7s} {'':>6s} {'ms':>7s} {'':>8s} "
          f"{'ms':>6s} {'max':>5s} {'mean':>6s}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for path in make_inputs(Path(tmp)):
            w, h = Image.open(path).size
            t0 = time.perf_counter()
            erp = decode_and_views(path, cfg, dev)  # builds and caches the sampling plan
            t_plan = time.perf_counter() - t0
            shape = decode(path, cfg, dev).shape
            t_dec, t_views = timed(
                lambda p=path: decode(p, cfg, dev),
                lambda p=path: decode_and_views(p, cfg, dev),
                repeats=args.repeats,
            )
            (t_ref,) = timed(lambda p=path: py360_views(p, cfg), repeats=max(1, args.repeats // 2))
            today, vs_py360 = (np.nan, np.nan) if args.no_geometry else geometry_checks(path, cfg)
            del erp
            print(
                f"{path.name:26s} {w:>5d}x{h:<4d} {shape[-1]:>5d}x{shape[-2]:<4d} "
                f"{1e3 * t_dec:7.1f} {1e3 * t_views:7.1f} {t_views / t_dec:5.2f}x "
                f"{1e3 * t_ref:7.1f} {t_ref / t_views:7.1f}x {1e3 * t_plan:6.0f} "
                f"{today:5.0f} {vs_py360:6.2f}"
            )


if __name__ == "__main__":
    main()
