"""Sampling ERP images through view cameras: spherical padding, antialiasing, cached plans.

``sample_views(erp, geoms, out_hw)`` renders any list of :class:`ViewGeometry` from a batch of
ERPs. Correct at the ±180° seam (columns wrap) and at the poles (the row beyond a pole is the
same row seen from the opposite longitude).

**Antialiasing.** Where a view pixel covers more than one ERP pixel (its *footprint*, see
:mod:`.density`) plain bilinear sampling aliases. With ``antialias=True`` (the default) each
pixel is sampled from a pyramid of ERP reductions (level ``l`` has ``2^-l`` of the ERP's size;
each level is the 2x2 box average of the one above where the size halves exactly, so no level
reaches across the seam, and a two-tap average for odd sizes): level ``floor(log2 footprint)``
(area-based footprint), blended with the next across the middle half of each octave
(trilinear mip-mapping, "brilinear"). An equirect view whose window is whole pixels of a level
(the global view, ``resize``, sliding-window and anyres tiles) is an area resize of that window
(exact for anisotropic scales such as the global view's 8:1 across, 4:1 down). Magnified pixels
(footprint <= 1) read level 0: exactly the plain sampler.

**Speed.** Everything that depends only on the layout — coordinates, footprints, level choice,
maps — is a *plan*, computed once per (layout, ERP size, output size, mode, device) and cached.
``uint8`` ERPs on the CPU (channels-last, as Pillow decodes them; bilinear) take ``cv2.remap``
from float maps (the same samples as ``grid_sample`` to a rounding): the pyramid levels are
written, spherically padded by one pixel, into one RGBA *atlas* (level 0 only in the rows that
are read, level 1 straight from the ERP); one remap reads every pixel's
lower level, a second only the pixels that blend two levels (about a third), and a third remap
mixes the two (its vertical taps run between a row of fine and a row of coarse samples) before
they are scattered back — all in output order, in this thread's reused scratch arrays. That path
renders uint8 views (``dtype=torch.uint8``: no float pass at all) or float ones. Other inputs
(float, CUDA, bicubic/nearest) take ``grid_sample`` over padded bands of the same levels.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from panollava.geometry.density import pixel_steps, required_erp_width
from panollava.geometry.projection import ViewGeometry, erp_coords_for_view

__all__ = ["Interpolation", "pad_erp", "required_erp_width", "sample_erp", "sample_views"]

Interpolation = Literal["bilinear", "bicubic", "nearest"]
_PAD = {"nearest": 1, "bilinear": 1, "bicubic": 2}
_MIN_LEVEL_ROWS = 4  # the coarsest pyramid level keeps at least this many rows


def pad_erp(erp: torch.Tensor, pad: int) -> torch.Tensor:
    """Spherically pad ERPs ``(B, C, H, W)`` -> ``(B, C, H + 2 pad, W + 2 pad)``.

    Columns wrap around the seam; rows past a pole come from the mirrored rows, rolled by 180°
    (``W // 2`` columns: for an odd width the antipode is off by half a pixel).
    """
    if pad <= 0:
        return erp
    h, w = erp.shape[-2:]
    if pad > h:
        raise ValueError(f"cannot pole-pad an ERP of size {h}x{w} by {pad}")
    top = torch.roll(erp[..., :pad, :].flip(-2), w // 2, dims=-1)  # (B, C, pad, W)
    bottom = torch.roll(erp[..., -pad:, :].flip(-2), w // 2, dims=-1)
    tall = torch.cat((top, erp, bottom), dim=-2)  # (B, C, H + 2 pad, W)
    return torch.cat((tall[..., -pad:], tall, tall[..., :pad]), dim=-1)


def _pad_band_np(hwc: np.ndarray, pad: int, rows: tuple[int, int]) -> np.ndarray:
    """Rows ``[r0, r1)`` of the spherically padded ERP ``(H, W, C)`` as float32 ``(r1-r0, W+2p, C)``.

    Same content as ``pad_erp`` (rows are in padded coordinates), built in one numpy pass.
    """
    h, w, c = hwc.shape
    r0, r1 = rows
    out = np.empty((r1 - r0, w + 2 * pad, c), np.float32)
    lo, hi = max(r0 - pad, 0), min(r1 - pad, h)  # source rows inside the image
    if hi > lo:
        out[lo + pad - r0 : hi + pad - r0, pad : pad + w] = hwc[lo:hi]
    for r in (*range(r0, min(r1, pad)), *range(max(r0, h + pad), r1)):  # rows past a pole
        src = pad - 1 - r if r < pad else 2 * h + pad - 1 - r
        out[r - r0, pad : pad + w] = np.roll(hwc[src], w // 2, axis=0)
    out[:, :pad] = out[:, w : w + pad]
    out[:, w + pad :] = out[:, pad : 2 * pad]
    return out


def _normalized_grid(coords: torch.Tensor, erp_hw: tuple[int, int], pad: int) -> torch.Tensor:
    """ERP pixel coordinates ``(..., 2)`` -> ``grid_sample`` grid over the ``pad``-padded ERP."""
    h, w = erp_hw
    x = torch.remainder(coords[..., 0] + 0.5, w) - 0.5 + pad  # into padded pixel space
    y = coords[..., 1] + pad
    hp, wp = h + 2 * pad, w + 2 * pad
    return torch.stack(((x + 0.5) * (2.0 / wp) - 1.0, (y + 0.5) * (2.0 / hp) - 1.0), -1)


def sample_erp(
    erp: torch.Tensor,
    coords: torch.Tensor,
    mode: Interpolation = "bilinear",
) -> torch.Tensor:
    """Sample ERPs ``(B, C, H, W)`` at pixel coordinates ``(B or 1, h, w, 2)`` -> ``(B, C, h, w)``.

    Point sampling (no prefilter). Coordinates follow :mod:`.sphere` (pixel centres at
    integers); ``x`` may be any real number (it is wrapped), ``y`` must lie within
    ``[-0.5, H - 0.5]``.
    """
    pad = _PAD[mode]
    grid = _normalized_grid(coords, tuple(erp.shape[-2:]), pad).to(erp.dtype)
    padded = pad_erp(erp, pad)
    grid = grid.expand(erp.shape[0], *grid.shape[1:])
    return F.grid_sample(padded, grid, mode=mode, padding_mode="border", align_corners=False)


@dataclass(frozen=True)
class _Level:
    """What one pyramid level contributes: ``grid`` ``(1, 1, N, 2)`` over padded rows ``rows``
    of the level, multiplied by ``weight`` ``(N,)`` (``None``: 1) and added to the slice
    ``span`` of the plan's sample order."""

    level: int
    size: tuple[int, int]
    rows: tuple[int, int]
    grid: torch.Tensor
    span: tuple[int, int]
    weight: torch.Tensor | None


@dataclass(frozen=True)
class _Plan:
    """Samples sorted by pyramid level so that each level fills one contiguous span;
    ``order`` ``(P,)`` takes the sorted samples back to output positions (``None``: they are in
    output order, every view sampled)."""

    levels: tuple[_Level, ...]
    samples: int
    order: torch.Tensor | None
    sampled: tuple[int, ...]  # views rendered by the pyramid sampler
    resized: tuple[tuple[int, ...], ...]  # (view, *_window(...)): windows shrunk by a resize
    valid: torch.Tensor | None  # (V, h, w); None when every pixel is valid


def _level_size(erp_hw: tuple[int, int], level: int) -> tuple[int, int]:
    return max(1, round(erp_hw[0] / 2**level)), max(1, round(erp_hw[1] / 2**level))


def _integral(v: float) -> int | None:
    r = round(v)
    return r if abs(v - r) < 1e-6 else None


def _window(
    geom: ViewGeometry, out_hw: tuple[int, int], erp_hw: tuple[int, int]
) -> tuple[int, int, int, int, int, int] | None:
    """An equirect view that is a whole-pixel ERP window shrunk by a resize: ``(first column,
    columns, first row, rows, first output row, output rows)``; ``None`` when the window's
    edges fall between ERP or output pixels, or when it magnifies (the general sampler then
    handles it)."""
    if geom.projection != "equirect":
        return None
    (h, w), (eh, ew) = out_hw, erp_hw
    top = geom.pitch_deg + geom.vfov_deg / 2
    bottom = geom.pitch_deg - geom.vfov_deg / 2
    x0 = _integral(((geom.yaw_deg - geom.hfov_deg / 2) / 360.0 + 0.5) * ew)
    xs = _integral(geom.hfov_deg / 360.0 * ew)
    y0 = _integral((0.5 - min(top, 90.0) / 180.0) * eh)
    y1 = _integral((0.5 - max(bottom, -90.0) / 180.0) * eh)
    t0 = _integral((top - min(top, 90.0)) / geom.vfov_deg * h)
    t1 = _integral((top - max(bottom, -90.0)) / geom.vfov_deg * h)
    if None in (x0, xs, y0, y1, t0, t1) or xs < w or t1 <= t0 or y1 - y0 < t1 - t0:
        return None
    return x0, xs, y0, y1 - y0, t0, t1 - t0


def _level_weights(
    coords: torch.Tensor, erp_hw: tuple[int, int], mode: Interpolation, antialias: bool
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per output pixel ``(N,)``: lower pyramid level, blend weight of the next one, top level.

    The level of detail is ``log2`` of the geometric mean of the two pixel steps (area-based:
    a gnomonic tile's mildly anisotropic edges keep their finer axis sharp)."""
    top = max(0, math.floor(math.log2(max(erp_hw[0] / _MIN_LEVEL_ROWS, 1.0))))
    n = coords.shape[0] * coords.shape[1] * coords.shape[2]
    if not antialias or top == 0:
        return torch.zeros(n, dtype=torch.long), torch.zeros(n), 0
    a, b = pixel_steps(coords, erp_hw[1])
    rho = torch.sqrt(a.norm(dim=-1) * b.norm(dim=-1))
    lam = torch.log2(rho.clamp_min(1.0)).reshape(-1)  # (N,)
    if mode == "nearest":
        lam = torch.round(lam)
    low = torch.floor(lam + 1e-3).clamp(max=top)  # a footprint within 0.1% of 2^l reads level l
    frac = torch.where(low >= top, torch.zeros_like(lam), (lam - low).clamp_min(0.0))
    # Blend only across the middle half between two levels ("brilinear"): elsewhere one level
    # serves alone, which halves the samples at a small cost in smoothness of the transition.
    frac = ((frac - 0.25) / 0.5).clamp(0.0, 1.0)
    up = (frac >= 1.0) & (low < top)
    low = torch.where(up, low + 1, low)
    frac = torch.where(up | (frac < 1e-3) | (low >= top), torch.zeros_like(frac), frac)
    return low.long(), frac, top


def _split_views(
    geoms: tuple[ViewGeometry, ...],
    out_hw: tuple[int, int],
    erp_hw: tuple[int, int],
    windows: bool,
) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...], torch.Tensor | None, torch.Tensor]:
    """Which views are resized ERP windows (``(view, *_window(...))``, only if ``windows``) and
    which are sampled; the sampled views' ERP coordinates ``(S, h, w, 2)`` float32 (``None``
    when none is) and every view's validity mask ``(V, h, w)``."""
    resized = []
    if windows:
        resized = [(k, *r) for k, g in enumerate(geoms) if (r := _window(g, out_hw, erp_hw))]
    skip = {r[0] for r in resized}
    sampled = tuple(k for k in range(len(geoms)) if k not in skip)
    coords, valid = zip(*(erp_coords_for_view(g, out_hw, erp_hw) for g in geoms), strict=True)
    sub = torch.stack([coords[k] for k in sampled], 0) if sampled else None
    return tuple(resized), sampled, sub, torch.stack(valid, 0)


@lru_cache(maxsize=16)  # ~20 MB each for 9 views of 256² (grids + order)
def _plan(
    geoms: tuple[ViewGeometry, ...],
    out_hw: tuple[int, int],
    erp_hw: tuple[int, int],
    mode: Interpolation,
    antialias: bool,
    device: str,
) -> _Plan:
    resized, sampled, sub, mask = _split_views(
        geoms, out_hw, erp_hw, antialias and mode != "nearest"
    )
    levels, order, n = [], None, 0
    if sampled:
        low, frac, _ = _level_weights(sub, erp_hw, mode, antialias)
        n = low.numel()
        # Samples grouped by lower level, blended ones last in their group, so that each
        # level's samples (its group's and the previous group's blend tails) are one span.
        perm = torch.argsort(2 * low + (frac > 0).long(), stable=True)
        low, frac, flat = low[perm], frac[perm], sub.reshape(-1, 2)[perm]
        if not bool((perm == torch.arange(n)).all()):
            order = torch.empty_like(perm)
            order[perm] = torch.arange(n)
        upper = frac > 0
        for lvl in range(int(low.min()), int(low.max()) + 2):
            # Level lvl serves the blend tails of group lvl - 1 and the bodies of group lvl:
            # one contiguous span of the sorted samples.
            in_span = (low == lvl) | ((low == lvl - 1) & upper)
            idx = torch.nonzero(in_span).flatten()
            if idx.numel() == 0:
                continue
            lo, hi = int(idx[0]), int(idx[-1]) + 1
            wts = torch.where(low[lo:hi] == lvl, 1.0 - frac[lo:hi], frac[lo:hi])
            weight = None if bool((wts == 1).all()) else wts
            level = _make_level(flat[lo:hi], erp_hw, lvl, mode, (lo, hi), weight)
            levels.append(_to_device(level, device))
    return _Plan(
        tuple(levels),
        n,
        order.to(device) if order is not None else None,
        sampled,
        tuple(resized),
        None if bool(mask.all()) else mask.to(device),
    )


def _to_device(level: _Level, device: str) -> _Level:
    weight = None if level.weight is None else level.weight.to(device)
    return _Level(level.level, level.size, level.rows, level.grid.to(device), level.span, weight)


def _make_level(
    coords: torch.Tensor,
    erp_hw: tuple[int, int],
    level: int,
    mode: Interpolation,
    span: tuple[int, int],
    weight: torch.Tensor | None,
) -> _Level:
    """A level's grid over the band of padded rows its samples read (``coords`` ``(N, 2)``)."""
    pad = _PAD[mode]
    size = _level_size(erp_hw, level)
    scale = torch.tensor([size[1] / erp_hw[1], size[0] / erp_hw[0]], dtype=coords.dtype)
    c = (coords + 0.5) * scale - 0.5  # level pixel coordinates
    y = c[:, 1] + pad
    r0 = max(0, math.floor(float(y.min())) - pad)
    r1 = min(size[0] + 2 * pad, math.ceil(float(y.max())) + pad + 1)
    x = torch.remainder(c[:, 0] + 0.5, size[1]) - 0.5 + pad
    grid = torch.stack(
        ((x + 0.5) * (2.0 / (size[1] + 2 * pad)) - 1.0, (y - r0 + 0.5) * (2.0 / (r1 - r0)) - 1.0),
        -1,
    )
    wt = None if weight is None else weight.to(torch.float32)
    return _Level(level, size, (r0, r1), grid.to(torch.float32)[None, None], span, wt)


def _next_level(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The next pyramid level of ``img`` ``(B, C, H, W)`` at ``size`` (about half): bilinear
    taps at the level's pixel centres, i.e. the 2x2 box average where the size halves exactly
    (no level reaches across the seam) and a two-tap average otherwise (odd sizes).

    CPU uint8 stays uint8 (``cv2.resize``, ``INTER_LINEAR``, rounded); anything else in float."""
    if img.dtype == torch.uint8 and img.device.type == "cpu":
        return _cv2_resize(img, size, "INTER_LINEAR")
    src = img if img.is_floating_point() else img.float()
    return F.interpolate(src, size=size, mode="bilinear", align_corners=False)


def _cv2_resize(img: torch.Tensor, size: tuple[int, int], how: str) -> torch.Tensor:
    out = [
        cv2.resize(x, size[::-1], interpolation=getattr(cv2, how))
        for x in img.permute(0, 2, 3, 1).numpy()
    ]
    out = [o[..., None] if o.ndim == 2 else o for o in out]  # cv2 drops a single channel
    batch = out[0][None] if len(out) == 1 else np.stack(out)  # one image: no copy
    return torch.from_numpy(batch).permute(0, 3, 1, 2)


def _area_reduce(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area resize of ``img`` ``(B, C, H, W)`` down to ``size``: each output pixel is the mean of
    the source area it covers. CPU uint8 stays uint8 (``cv2.INTER_AREA``, rounded); anything
    else is averaged in float (``avg_pool2d`` for integer factors, else exact fractional areas
    from running sums)."""
    h, w = img.shape[-2:]
    if (h, w) == tuple(size):
        return img
    if img.dtype == torch.uint8 and img.device.type == "cpu":
        # At exact 1:1 / 2:1 per axis, bilinear taps at the output pixel centres are the area
        # (box) average; cv2's INTER_AREA takes a slow general path for unequal factors (~6x).
        halves = h in (size[0], 2 * size[0]) and w in (size[1], 2 * size[1])
        return _cv2_resize(img, size, "INTER_LINEAR" if halves else "INTER_AREA")
    src = img if img.is_floating_point() else img.float()
    if h % size[0] == 0 and w % size[1] == 0:
        return F.avg_pool2d(src, (h // size[0], w // size[1]))
    return _area_1d(_area_1d(src, size[0], -2), size[1], -1)


def _area_1d(x: torch.Tensor, m: int, dim: int) -> torch.Tensor:
    """Area resize of ``x`` along ``dim`` from ``n`` to ``m <= n`` samples: output ``i`` is the
    mean over ``[i n / m, (i + 1) n / m)`` (fractional pixels counted by their share), read off
    the running sum ``S(t)`` of the piecewise-constant signal (what ``cv2.INTER_AREA`` does)."""
    n = x.shape[dim]
    zero = torch.zeros_like(x.narrow(dim, 0, 1))
    run = torch.cat((zero, torch.cumsum(x, dim)), dim)  # S at integers 0..n
    t = torch.arange(m + 1, dtype=torch.float64, device=x.device) * (n / m)
    k = t.floor().long().clamp(max=n - 1)
    frac = (t - k).to(x.dtype)
    shape = [1] * x.ndim
    shape[dim] = m + 1
    at = run.index_select(dim, k) + frac.view(shape) * x.index_select(dim, k)  # S(t)
    return (at.narrow(dim, 1, m) - at.narrow(dim, 0, m)) * (m / n)


def _window_level(
    window: tuple[int, int, int, int],
    size: tuple[int, int],
    erp_hw: tuple[int, int],
    top: int = 63,
) -> tuple[int, int, int, int, int]:
    """The coarsest pyramid level still finer than the output ``size`` whose pixels tile the
    window ``(x0, xs, y0, ys)`` (the whole ERP is tiled by every level), and the window in that
    level's pixels."""
    best = (0, *window)
    for lvl in range(1, top + 1):
        lh, lw = _level_size(erp_hw, lvl)
        x0, xs = window[0] * lw / erp_hw[1], window[1] * lw / erp_hw[1]
        y0, ys = window[2] * lh / erp_hw[0], window[3] * lh / erp_hw[0]
        if xs < size[1] or ys < size[0]:
            break
        whole = [_integral(v) for v in (x0, xs, y0, ys)]
        if None not in whole:
            best = (lvl, *whole)
    return best


def _padded_band(img: torch.Tensor, pad: int, rows: tuple[int, int]) -> torch.Tensor:
    """Rows ``rows`` of the spherically padded ``img`` ``(B, C, H, W)`` as float32 (channels-last
    when built from CPU uint8)."""
    if img.dtype == torch.uint8 and img.device.type == "cpu":
        hwc = img.permute(0, 2, 3, 1).numpy()  # a view when img is channels-last
        bands = [torch.from_numpy(_pad_band_np(hwc[b], pad, rows)) for b in range(img.shape[0])]
        band = bands[0][None] if len(bands) == 1 else torch.stack(bands, 0)
        return band.permute(0, 3, 1, 2)  # (B, C, r1 - r0, W + 2p)
    src = img if img.is_floating_point() else img.float()
    return pad_erp(src, pad)[..., rows[0] : rows[1], :]


class _Pyramid:
    """Lazily built area (2x2 box) reductions of one ERP batch (level 0 is the ERP itself)."""

    def __init__(self, *levels: torch.Tensor) -> None:
        """``levels``: the ERP batch (level 0), optionally followed by levels already built."""
        self.levels = dict(enumerate(levels))
        self.hw = (int(levels[0].shape[-2]), int(levels[0].shape[-1]))

    def level(self, lvl: int) -> torch.Tensor:
        for k in range(1, lvl + 1):  # each level reduces the one above it
            if k not in self.levels:
                self.levels[k] = _next_level(self.levels[k - 1], _level_size(self.hw, k))
        return self.levels[lvl]

    def window(
        self, x0: int, xs: int, y0: int, ys: int, size: tuple[int, int], top: int = 63
    ) -> torch.Tensor:
        """The ERP window area-resized to ``size``, from the coarsest level (up to ``top``) still
        finer."""
        lvl, x0, xs, y0, ys = _window_level((x0, xs, y0, ys), size, self.hw, top)
        src = self.level(lvl)
        lw = src.shape[-1]
        crop = src[..., y0 : y0 + ys, :]
        if x0 >= 0 and x0 + xs <= lw:
            crop = crop[..., x0 : x0 + xs]
        else:  # the window wraps around the seam
            crop = crop.index_select(-1, torch.arange(x0, x0 + xs, device=src.device) % lw)
        return _area_reduce(crop, size)


_CV2_MAX = 32767  # cv2.remap takes images and maps smaller than this on each side


@dataclass(frozen=True)
class _RemapPlan:
    """The uint8 CPU plan. Pyramid levels ``0..len(sizes) - 1`` live in one *atlas* image, each
    spherically padded by one pixel at ``origins[k]`` (row, column of its padded corner): level
    0 on the left, the others stacked on its right. ``lower`` ``(S h, w, 2)`` float32 holds the
    atlas coordinates of every pixel of the stacked sampled views at its lower level. Only some
    pixels blend two levels (about a third of a 90° tile: ``_level_weights``): their flat
    indices ``blend_at`` ``(R w,)`` (padded by repeating the last) and their atlas coordinates at
    the next level ``upper`` ``(R, w, 2)`` are packed into rows of ``w``; ``mix`` ``(R, w, 2)``
    reads packed pixel ``(r, x)`` at ``(x, 2 r + f)`` of an image whose row ``2 r`` holds the
    fine and row ``2 r + 1`` the coarse samples, i.e. ``(1 - f)`` fine + ``f`` coarse (all
    ``None`` when no pixel blends)."""

    sizes: tuple[tuple[int, int], ...]
    origins: tuple[tuple[int, int], ...]
    atlas_hw: tuple[int, int]
    band: tuple[int, int]  # the padded rows of level 0 that anything reads
    lower: np.ndarray | None
    upper: np.ndarray | None
    blend_at: np.ndarray | None
    mix: np.ndarray | None
    sampled: tuple[int, ...]
    resized: tuple[tuple[int, ...], ...]
    valid: np.ndarray | None  # (V, h, w) bool


def _atlas_layout(
    erp_hw: tuple[int, int], top: int
) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...], tuple[int, int]]:
    """Sizes and padded origins of levels ``0..top`` in the atlas, and the atlas size."""
    sizes = tuple(_level_size(erp_hw, k) for k in range(top + 1))
    origins, row = [(0, 0)], 0
    for h, _ in sizes[1:]:
        origins.append((row, erp_hw[1] + 2))
        row += h + 2
    width = erp_hw[1] + 2 + (sizes[1][1] + 2 if top else 0)
    return sizes, tuple(origins), (max(erp_hw[0] + 2, row), width)


@lru_cache(maxsize=16)  # ~6 MB each for 8 tiles of 256² (maps, blend indices and weights)
def _remap_plan(
    geoms: tuple[ViewGeometry, ...],
    out_hw: tuple[int, int],
    erp_hw: tuple[int, int],
    antialias: bool,
) -> _RemapPlan:
    resized, sampled, sub, valid = _split_views(geoms, out_hw, erp_hw, antialias)
    mask = valid.numpy()
    lower = upper = blend_at = mix = None
    top = 0
    if sampled:
        low, frac, _ = _level_weights(sub, erp_hw, "bilinear", antialias)
        low, frac = low.numpy(), frac.numpy()
        blends = frac > 0
        top = int(low.max()) + int(blends.any())
    sizes, origins, atlas_hw = _atlas_layout(erp_hw, top)
    if sampled:
        flat = sub.reshape(-1, 2).numpy().astype(np.float64)

        def atlas_xy(erp_xy: np.ndarray, level: np.ndarray) -> np.ndarray:
            """ERP pixel coordinates ``(N, 2)`` at pyramid ``level`` ``(N,)`` -> atlas
            coordinates in rows of ``w`` ``(N / w, w, 2)``."""
            xy = np.empty((erp_xy.shape[0], 2), np.float32)
            for k in np.unique(level).tolist():
                sel = level == k
                (lh, lw), (r0, c0) = sizes[k], origins[k]
                x = (erp_xy[sel, 0] + 0.5) * (lw / erp_hw[1]) - 0.5
                xy[sel, 0] = np.remainder(x + 0.5, lw) - 0.5 + 1 + c0  # past the padding
                xy[sel, 1] = (erp_xy[sel, 1] + 0.5) * (lh / erp_hw[0]) - 0.5 + 1 + r0
            return xy.reshape(-1, out_hw[1], 2)

        lower = atlas_xy(flat, low)
        if blends.any():
            at = np.flatnonzero(blends)
            at = np.concatenate((at, np.full(-at.size % out_hw[1], at[-1])))  # whole rows
            upper = atlas_xy(flat[at], low[at] + 1)
            f = frac[at].reshape(-1, out_hw[1]).astype(np.float32)
            rows = np.arange(f.shape[0], dtype=np.float32)[:, None]
            cols = np.broadcast_to(np.arange(out_hw[1], dtype=np.float32), f.shape)
            blend_at, mix = at, np.ascontiguousarray(np.stack((cols, 2 * rows + f), -1))
    band = _level0_band(lower, low if sampled else None, resized, out_hw[1], erp_hw, len(sizes) - 1)
    return _RemapPlan(
        sizes, origins, atlas_hw, band, lower, upper, blend_at, mix, sampled, resized,
        None if mask.all() else mask,
    )  # fmt: skip


def _level0_band(
    lower: np.ndarray | None,
    low: np.ndarray | None,
    resized: tuple[tuple[int, ...], ...],
    out_w: int,
    erp_hw: tuple[int, int],
    top: int,
) -> tuple[int, int]:
    """The padded rows ``[r0, r1)`` of level 0 that the remap (its level-0 samples, bilinear:
    two rows each) and the resized windows read: only they are written into the atlas. A
    horizontal ring of 90° tiles reads level 0 between about ±45° latitude, half the rows."""
    r0, r1 = erp_hw[0] + 2, 0
    if lower is not None and (low == 0).any():
        y = lower.reshape(-1, 2)[low == 0, 1]  # level 0 sits at the atlas origin
        r0, r1 = math.floor(float(y.min())), math.floor(float(y.max())) + 2
    for _, *window, _, rows in resized:
        lvl, _, _, y0, ys = _window_level(tuple(window), (rows, out_w), erp_hw, top)
        if lvl == 0:
            r0, r1 = min(r0, y0 + 1), max(r1, y0 + ys + 1)
    return (max(r0, 0), min(r1, erp_hw[0] + 2)) if r1 > r0 else (0, 0)


def _pad_in_place(level: np.ndarray, rows: tuple[int, int] | None = None) -> None:
    """Fill the one-pixel border of ``level`` ``(h + 2, w + 2, C)`` as :func:`pad_erp` does:
    the row beyond a pole is the pole row rolled by ``w // 2``, then columns wrap (only padded
    rows ``rows``, when given)."""
    h, w = level.shape[0] - 2, level.shape[1] - 2
    r0, r1 = rows or (0, h + 2)
    s = w // 2
    for pad, pole in ((0, 1), (h + 1, h)):
        if r0 <= pad < r1:
            level[pad, 1 + s : w + 1] = level[pole, 1 : w + 1 - s]
            level[pad, 1 : 1 + s] = level[pole, w + 1 - s : w + 1]
    level[r0:r1, 0] = level[r0:r1, w]
    level[r0:r1, w + 1] = level[r0:r1, 1]


_WORKSPACE = threading.local()


def _workspace(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 scratch array of this thread, kept between calls: writing fresh pages costs more
    than the remap itself (first-touch page faults: ~6 ms for a 2048x1024 atlas)."""
    arrays = _WORKSPACE.__dict__.setdefault("arrays", {})
    if name not in arrays or arrays[name].shape != shape:
        arrays[name] = np.empty(shape, np.uint8)
    return arrays[name]


def _build_atlas(hwc: np.ndarray, plan: _RemapPlan) -> tuple[np.ndarray, list[np.ndarray]]:
    """The atlas ``(AH, AW, C')`` of one ERP ``(H, W, C)`` uint8 and its levels' interiors (in
    this thread's workspace: valid until its next call; level 0 only in ``plan.band``). RGB
    is stored as RGBA (``C' = 4``): ``cv2.remap`` samples 4 channels ~1.7x faster than 3."""
    rgb = hwc.shape[2] == 3
    atlas = _workspace("atlas", (*plan.atlas_hw, 4 if rgb else hwc.shape[2]))
    levels = []
    for k, ((h, w), (r0, c0)) in enumerate(zip(plan.sizes, plan.origins, strict=True)):
        padded = atlas[r0 : r0 + h + 2, c0 : c0 + w + 2]
        inner = padded[1 : h + 1, 1 : w + 1]
        if k == 0:  # only the band of rows that is read (plan.band)
            lo, hi = max(plan.band[0], 1), min(plan.band[1], h + 1)
            if hi > lo:
                _store_rows(hwc[lo - 1 : hi - 1], padded[lo:hi, 1 : w + 1])
            _pad_in_place(padded, plan.band)
        else:  # :func:`_next_level` of the level above (level 1: of the ERP), in place
            src = hwc if k == 1 else levels[-1]
            if k == 1 and rgb:
                half = _workspace("half", (h, w, 3))
                cv2.resize(src, (w, h), dst=half, interpolation=cv2.INTER_LINEAR)
                cv2.cvtColor(half, cv2.COLOR_RGB2RGBA, dst=inner)
            else:
                cv2.resize(src, (w, h), dst=inner, interpolation=cv2.INTER_LINEAR)
            _pad_in_place(padded)
        levels.append(inner)
    return atlas, levels


def _store_rows(src: np.ndarray, dst: np.ndarray) -> None:
    """ERP pixels ``(n, w, C)`` into atlas rows ``(n, w, C')`` (RGB gets an opaque alpha)."""
    if src.shape[2] == 3:
        cv2.cvtColor(src, cv2.COLOR_RGB2RGBA, dst=dst)
    else:
        dst[...] = src


def _sample_views_remap(
    erp: torch.Tensor, geoms: tuple[ViewGeometry, ...], out_hw: tuple[int, int], antialias: bool
) -> torch.Tensor:
    """:func:`sample_views` for bilinear CPU uint8 ERPs ``(B, C, H, W)`` -> uint8 views
    ``(B, V, C, h, w)`` (channels-last memory): ``cv2.remap`` from float maps (the same samples as
    ``grid_sample`` to a rounding) over the padded pyramid atlas (:func:`_remap_blended`)."""
    h, w = out_hw
    b, c = erp.shape[:2]
    plan = _remap_plan(geoms, out_hw, (int(erp.shape[-2]), int(erp.shape[-1])), antialias)
    out = np.empty((b, len(geoms), h, w, c), np.uint8)
    hwc = erp.permute(0, 2, 3, 1).numpy()
    n, first = len(plan.sampled), plan.sampled[0] if plan.sampled else 0
    in_order = plan.sampled == tuple(range(first, first + n))
    for i in range(b):
        atlas, levels = _build_atlas(hwc[i], plan)
        if n:
            img = _remap_blended(atlas, plan)  # (S h, w, C') in this thread's workspace
            if in_order:
                _store(img, out[i, first : first + n].reshape(n * h, w, c))
            else:
                out[i, list(plan.sampled)] = img.reshape(n, h, w, -1)[..., :c]
        pyramid = _Pyramid(*(torch.from_numpy(v).permute(2, 0, 1)[None] for v in levels))
        for k, *window, top, rows in plan.resized:  # the atlas stops at the tiles' coarsest level
            small = pyramid.window(*window, (rows, w), top=len(levels) - 1)[0]  # (C', rows, w)
            if rows < h:
                out[i, k] = 0
            _store(small.permute(1, 2, 0).numpy(), out[i, k, top : top + rows])
    if plan.valid is not None:
        out *= plan.valid[None, :, :, :, None]
    return torch.from_numpy(out).permute(0, 1, 4, 2, 3)


def _store(src: np.ndarray, dst: np.ndarray) -> None:
    """Write atlas pixels ``(..., C')`` into ``dst`` ``(..., C)`` (RGBA -> RGB drops alpha)."""
    if src.shape[-1] == 4 and dst.shape[-1] == 3 and dst.flags.c_contiguous:
        cv2.cvtColor(src.reshape(-1, *src.shape[-2:]), cv2.COLOR_RGBA2RGB,
                     dst=dst.reshape(-1, *dst.shape[-2:]))  # fmt: skip
    else:
        dst[...] = src[..., : dst.shape[-1]]


_PIXEL_DTYPE = {1: np.uint8, 4: np.uint32}  # one element per atlas pixel (RGB is RGBA)


def _remap_blended(atlas: np.ndarray, plan: _RemapPlan) -> np.ndarray:
    """The stacked sampled views ``(S h, w, C')`` uint8 (this thread's workspace): every pixel
    remapped at its lower level; the pixels that blend two levels gathered (whole pixels as one
    integer each) into the even rows of a packed image, remapped at the next level into its odd
    rows, mixed by a remap between the two rows (``plan.mix``) and scattered back."""
    channels = atlas.shape[2]
    img = cv2.remap(atlas, plan.lower, None, cv2.INTER_LINEAR,
                    dst=_workspace("lower", (*plan.lower.shape[:2], channels)))  # fmt: skip
    if plan.upper is None:
        return img
    rows, w = plan.upper.shape[:2]
    pixel = _PIXEL_DTYPE[channels]
    pixels = img.view(pixel).reshape(-1)
    pair = _workspace("pair", (2 * rows, w, channels))  # row 2r: fine, 2r + 1: coarse of row r
    fine = _workspace("fine", (rows, w, channels)).view(pixel).reshape(-1)
    np.take(pixels, plan.blend_at, out=fine, mode="clip")  # indices are in range: no buffering
    pair[0::2] = fine.view(np.uint8).reshape(rows, w, channels)
    coarse = pair[1::2]
    if cv2.remap(atlas, plan.upper, None, cv2.INTER_LINEAR, dst=coarse) is not coarse:
        raise RuntimeError("this OpenCV build copied a strided remap output: pin opencv 5.0")
    mixed = cv2.remap(pair, plan.mix, None, cv2.INTER_LINEAR,
                      dst=_workspace("mixed", (rows, w, channels)))  # fmt: skip
    pixels[plan.blend_at] = mixed.view(pixel).reshape(-1)
    return img


def _remap_applies(erp: torch.Tensor, n_views: int, out_hw: tuple[int, int], mode: str) -> bool:
    """The ``cv2.remap`` path serves bilinear uint8 CPU ERPs of 1, 3 or 4 channels within cv2's
    size limits (other inputs take ``grid_sample``: same geometry, float arithmetic). Not 2:
    cv2 remaps 2-channel images with 1/32-pixel fixed-point weights, up to 4 levels off."""
    return (
        mode == "bilinear"
        and erp.dtype == torch.uint8
        and erp.device.type == "cpu"
        and erp.shape[1] in (1, 3, 4)
        and max(erp.shape[-2:]) < _CV2_MAX
        and n_views * out_hw[0] < _CV2_MAX
        and out_hw[1] < _CV2_MAX
    )


def sample_views(
    erp: torch.Tensor,
    geoms: Sequence[ViewGeometry],
    out_hw: Sequence[int],
    mode: Interpolation = "bilinear",
    *,
    antialias: bool = True,
    scale: float = 1.0,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Render views of ERPs ``(B, C, H, W)`` -> ``(B, V, C, h, w)``; invalid pixels are zero.

    Float by default: values keep the input's scale times ``scale`` (a uint8 ERP with
    ``scale=1/255`` gives floats in ``[0, 1]``). ``dtype=torch.uint8`` (uint8 ERPs only, scale 1)
    renders uint8 views rounded to the ERP's levels (the CPU fast path never leaves uint8).
    ``antialias`` prefilters minified pixels (module docstring); ``False`` point-samples every
    pixel.
    """
    if erp.ndim != 4:
        raise ValueError(f"erp must be (B, C, H, W), got shape {tuple(erp.shape)}")
    if dtype not in (None, torch.uint8) or (
        dtype == torch.uint8 and (erp.dtype != torch.uint8 or scale != 1.0)
    ):
        raise ValueError(
            f"dtype={dtype} with a {erp.dtype} ERP and scale {scale}: views are float (dtype "
            "None), or uint8 from a uint8 ERP at scale 1"
        )
    geoms = tuple(geoms)
    h, w = int(out_hw[0]), int(out_hw[1])
    if _remap_applies(erp, len(geoms), (h, w), mode):
        views = _sample_views_remap(erp, geoms, (h, w), antialias)
        if dtype == torch.uint8:
            return views
        # one contiguous pass: multiplying while converting from uint8 is ~2x slower than both
        out = views.to(torch.float32, memory_format=torch.contiguous_format)
        return out.mul_(scale) if scale != 1.0 else out
    out = _sample_views_grid(erp, geoms, (h, w), mode, antialias, scale)
    return out.round_().clamp_(0, 255).to(torch.uint8) if dtype == torch.uint8 else out


def _sample_views_grid(
    erp: torch.Tensor,
    geoms: tuple[ViewGeometry, ...],
    out_hw: tuple[int, int],
    mode: Interpolation,
    antialias: bool,
    scale: float,
) -> torch.Tensor:
    """:func:`sample_views` with ``grid_sample`` over padded bands of the pyramid levels
    (float, CUDA, bicubic/nearest) -> float views ``(B, V, C, h, w)``."""
    h, w = out_hw
    erp_hw = (int(erp.shape[-2]), int(erp.shape[-1]))
    plan = _plan(geoms, (h, w), erp_hw, mode, antialias, str(erp.device))
    b, c, dev = erp.shape[0], erp.shape[1], erp.device
    dtype = erp.dtype if erp.is_floating_point() else torch.float32
    out = torch.zeros(b, len(geoms), c, h, w, dtype=dtype, device=dev)
    pyramid = _Pyramid(erp)
    if plan.levels:
        acc = None
        for lvl in plan.levels:
            band = _padded_band(pyramid.level(lvl.level), _PAD[mode], lvl.rows)
            grid = lvl.grid.to(device=dev, dtype=dtype).expand(b, -1, -1, -1)
            vals = F.grid_sample(
                band.to(dtype), grid, mode=mode, padding_mode="border", align_corners=False
            )[:, :, 0]  # (B, C, N)
            factor = scale if lvl.weight is None else lvl.weight.to(dev, dtype) * scale
            if acc is None and lvl.span == (0, plan.samples):
                acc = vals.mul_(factor)
                continue
            if acc is None:
                acc = torch.zeros(b, c, plan.samples, dtype=dtype, device=dev)
            acc[:, :, lvl.span[0] : lvl.span[1]].addcmul_(vals, torch.as_tensor(factor))
        if plan.order is not None:  # 2-D index_select: the 3-D one is ~40x slower on CPU
            acc = acc.reshape(b * c, -1).index_select(1, plan.order)
        sampled = acc.view(b, c, len(plan.sampled), h, w).transpose(1, 2)  # (B, S, C, h, w)
        if len(plan.sampled) == len(geoms):
            out = sampled
        else:
            out[:, list(plan.sampled)] = sampled
    for k, x0, xs, y0, ys, top, rows in plan.resized:
        view = pyramid.window(x0, xs, y0, ys, (rows, w)).to(dtype)
        out[:, k, :, top : top + rows] = view.mul_(scale) if scale != 1.0 else view
    if plan.valid is not None:
        out = out * plan.valid[None, :, None].to(dtype)
    return out
