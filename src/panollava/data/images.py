"""Loading equirectangular panoramas: robust decoding into ``(3, H, W)`` tensors, and the one
path from a file to its views (:func:`load_views`).

* JPEG / PNG / WebP (anything Pillow reads); EXIF orientation applied;
* grayscale, RGBA/LA (composited on black), palette, CMYK and 16-bit inputs become 8-bit-accurate
  RGB — 16-bit data is scaled by 1/65535, never clipped;
* embedded ICC profiles are honoured: pixels are converted to sRGB with LittleCMS (Pillow
  ``ImageCms``, perceptual intent); profiles that describe sRGB itself are left as they are;
* JPEGs are decoded at reduced scale (DCT scaling, ``Image.draft``) when the views need fewer
  pixels than the file has — never below ``min_width``;
* decompression bombs (> ``max_pixels``) and tiny images are refused;
* the ERP aspect policy is explicit: ``error``, ``resample`` (to 2:1, with a warning) or ``pad``
  (black rows added at both poles to reach 2:1 — keeps the horizontal sampling, with a warning).

Every failure raises :class:`ImageLoadError` naming the file and what to do.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from torchvision.io import ImageReadMode, decode_jpeg

from panollava.data.schema import ImageConfig
from panollava.views import ViewSet, build_viewset, required_erp_width
from panollava.views.schema import ViewsConfig

__all__ = [
    "ImageLoadError",
    "NotTorchDecodable",
    "decode_erp",
    "decode_image",
    "decode_jpeg_torch",
    "load_erp",
    "load_views",
    "open_image",
]

log = logging.getLogger(__name__)

_EXIF_ORIENTATION = 0x0112


class ImageLoadError(ValueError):
    """A panorama file is missing, unreadable, too large/small or has a refused aspect."""


class NotTorchDecodable(ImageLoadError):
    """A readable image that :func:`decode_jpeg_torch` does not take (not an 8-bit 2:1 JPEG)."""


_PILLOW_GUARD = threading.Lock()  # Image.MAX_IMAGE_PIXELS is Pillow-global: set it under a lock


def open_image(path: Path, cfg: ImageConfig) -> Image.Image:
    """Open ``path`` (header only) and apply the loaders' checks: ``image.max_pixels`` (in place
    of Pillow's own 89.5 MP guard, which is lifted for this call only) and ``image.min_size``.
    ``data check`` uses this same function, so it refuses exactly what the loaders refuse."""
    if not path.is_file():
        raise ImageLoadError(f"{path}: file not found (check the path or the image root)")
    too_big = (
        f"exceeds image.max_pixels={cfg.max_pixels:,} (a decompression-bomb guard); raise it "
        "if the file is trusted"
    )
    try:
        with _PILLOW_GUARD, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            default, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, cfg.max_pixels
            try:
                img = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = default
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{path}: not an image Pillow can read ({exc})") from None
    except Image.DecompressionBombError:  # over twice max_pixels
        raise ImageLoadError(f"{path}: more than twice the pixels that {too_big}") from None
    except OSError as exc:  # a header cut short
        raise ImageLoadError(
            f"{path}: corrupt or truncated image ({exc}); re-download it"
        ) from None
    w, h = img.size
    if w * h > cfg.max_pixels:
        raise ImageLoadError(f"{path}: {w}x{h} = {w * h:,} pixels {too_big}")
    if min(w, h) < cfg.min_size:
        raise ImageLoadError(
            f"{path}: {w}x{h} is smaller than image.min_size={cfg.min_size} px: not a panorama"
        )
    return img


_open = open_image


def _draft(img: Image.Image, min_width: int | None, path: Path) -> None:
    """Ask the JPEG decoder for the smallest DCT scale (1/2, 1/4, 1/8) >= ``min_width``."""
    if min_width is None or img.format != "JPEG":
        return
    w, h = img.size
    scale = _draft_scale(w, min_width)
    if scale > 1:
        img.draft(img.mode, (w // scale, h // scale))  # Pillow picks the scale from floor sizes
        log.debug("%s: JPEG decoded at 1/%d scale (%dx%d)", path, scale, *img.size)


_CMS_MODES = ("RGB", "RGBA", "L", "CMYK")  # what LittleCMS converts here


def _profile_name(icc: bytes) -> str:
    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except (OSError, ImageCms.PyCMSError):
        return ""


def _is_srgb(icc: bytes) -> bool:
    """A profile that describes sRGB itself (converting would only cost time)."""
    return _profile_name(icc).startswith("sRGB")


@lru_cache(maxsize=16)
def _to_srgb_transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform:
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    out_mode = "RGBA" if mode == "RGBA" else "RGB"
    return ImageCms.buildTransform(src, ImageCms.createProfile("sRGB"), mode, out_mode)


def _colour_manage(img: Image.Image, path: Path) -> Image.Image:
    """Convert an image with an embedded ICC profile to sRGB (no profile or sRGB: unchanged)."""
    icc = img.info.get("icc_profile")
    if not icc or _is_srgb(icc):
        return img
    if img.mode not in _CMS_MODES:
        raise ImageLoadError(
            f"{path}: embedded ICC profile {_profile_name(icc)!r} on a {img.mode} image cannot "
            "be converted to sRGB here; convert the file to 8-bit sRGB first"
        )
    try:
        return ImageCms.applyTransform(img, _to_srgb_transform(icc, img.mode))
    except (OSError, ImageCms.PyCMSError) as exc:
        raise ImageLoadError(
            f"{path}: its embedded ICC profile is unreadable ({exc}); strip or repair the profile"
        ) from None


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> ``(H, W, 3)``: uint8 for 8-bit content, float32 in ``[0, 1]`` otherwise."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        # Full scale of the data: 16-bit modes 65535; 32-bit "I" by its largest value's range
        # (8-bit content in an "I" file, 16-bit, else the whole int32 range), never clipped.
        peak = arr.max(initial=0.0)
        top = 65535.0 if mode.startswith("I;16") or 255 < peak <= 65535 else 255.0
        if mode == "I" and peak > 65535:
            top = float(2**31 - 1)
        gray = (arr / top).clip(0, 1).astype(np.float32)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "F":
        gray = np.asarray(img, dtype=np.float32).clip(0, 1)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        arr = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        return arr[..., :3] * arr[..., 3:4]  # composite on black
    if mode != "RGB":
        img = img.convert("RGB")  # L, P, CMYK (Pillow inverts Adobe CMYK), YCbCr, 1
    return np.array(img)  # writable (torch.from_numpy shares it)


def _fix_aspect(arr: np.ndarray, cfg: ImageConfig, path: Path) -> np.ndarray:
    h, w = arr.shape[:2]
    if abs(w / h - 2.0) <= 2.0 * cfg.aspect_tolerance:
        return arr
    msg = f"{path}: {w}x{h} is not a 2:1 equirectangular panorama"
    if cfg.aspect_policy == "error":
        raise ImageLoadError(f"{msg} (set image.aspect_policy to 'resample' or 'pad' to accept it)")
    if cfg.aspect_policy == "pad" and w > 2 * h:
        # A partial panorama missing its poles: black rows above and below, pixels untouched.
        target_h = round(w / 2)
        out = np.zeros((target_h, w, 3), dtype=arr.dtype)
        top = (target_h - h) // 2
        out[top : top + h] = arr
        warnings.warn(f"{msg}; padded with black rows at the poles to {w}x{target_h}", stacklevel=3)
        return out
    new_w = max(2, round(max(w, 2 * h) / 2) * 2)
    src = arr if arr.dtype == np.uint8 else (arr * 255).round().astype(np.uint8)
    resized = Image.fromarray(src).resize((new_w, new_w // 2), Image.Resampling.BICUBIC)
    why = (
        ""
        if cfg.aspect_policy == "resample"
        else " (padding only adds rows: the image is too tall)"
    )
    warnings.warn(f"{msg}; resampled to {new_w}x{new_w // 2}{why}", stacklevel=3)
    return np.array(resized)


def decode_image(path: str | Path, *, cfg: ImageConfig, min_width: int | None = None) -> np.ndarray:
    """Decode ``path`` -> ``(H, W, 3)`` RGB (uint8, or float32 in ``[0, 1]`` for >8-bit data)."""
    path = Path(path)
    img = _open(path, cfg)
    try:
        if cfg.draft_decode:
            _draft(img, min_width, path)
        if img.getexif().get(_EXIF_ORIENTATION, 1) != 1:
            img = ImageOps.exif_transpose(img)
        img = _colour_manage(img, path)
        arr = _to_rgb_array(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(
            f"{path}: corrupt or truncated image ({exc}); re-download it"
        ) from None
    return _fix_aspect(arr, cfg, path)


def _draft_scale(w: int, min_width: int | None) -> int:
    """The DCT scale (1, 2, 4 or 8) :func:`_draft` picks for width ``w``."""
    scale = 1
    while min_width is not None and scale < 8 and w // (scale * 2) >= min_width:
        scale *= 2
    return scale


# EXIF orientation -> (quarter turns counter-clockwise, then mirror left-right) of the pixels.
_ORIENT = {
    2: (0, True),
    3: (2, False),
    4: (2, True),
    5: (3, True),
    6: (3, False),
    7: (1, True),
    8: (1, False),
}


def decode_jpeg_torch(
    path: str | Path,
    *,
    cfg: ImageConfig | None = None,
    min_width: int | None = None,
    device: str | torch.device = "cuda",
) -> torch.Tensor:
    """Decode an 8-bit RGB/grayscale 2:1 JPEG with torchvision on ``device`` (nvJPEG on CUDA)
    -> ``(3, H, W)`` float32 in ``[0, 1]`` on ``device``.

    The same checks as :func:`load_erp` (header read by Pillow: bombs, tiny images, EXIF
    orientation). The full-resolution decode is area-downscaled by the scale JPEG draft decoding
    would pick for ``min_width``, so the result matches the CPU path to a level or two. Raises
    :class:`NotTorchDecodable` for files this path does not take (use :func:`load_erp`).
    """

    cfg = cfg or ImageConfig()
    path = Path(path)
    img = _open(path, cfg)
    w, h = img.size
    if img.format != "JPEG" or img.mode not in ("RGB", "L"):
        raise NotTorchDecodable(f"{path}: {img.format} {img.mode} is not an 8-bit RGB/gray JPEG")
    icc = img.info.get("icc_profile")
    if icc and not _is_srgb(icc):  # nvJPEG has no colour management
        raise NotTorchDecodable(
            f"{path}: embedded ICC profile {_profile_name(icc)!r} is colour-managed on CPU"
        )
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(f"{path}: corrupt or truncated JPEG ({exc}); re-download it") from None
    turns, mirror = _ORIENT.get(orientation, (0, False))
    shown_w, shown_h = (h, w) if turns % 2 else (w, h)
    if abs(shown_w / shown_h - 2.0) > 2.0 * cfg.aspect_tolerance:
        raise NotTorchDecodable(
            f"{path}: {shown_w}x{shown_h} is not 2:1 (the aspect policy runs on CPU)"
        )
    data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
    try:
        pixels = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)  # (3, h, w) uint8
    except RuntimeError as exc:
        raise ImageLoadError(f"{path}: corrupt or truncated JPEG ({exc}); re-download it") from None
    out = pixels.float().div_(255.0)
    scale = _draft_scale(w, min_width) if cfg.draft_decode else 1
    if scale > 1:  # like libjpeg's DCT scaling: averages, output size rounded up
        size = (-(-h // scale), -(-w // scale))
        out = torch.nn.functional.interpolate(out[None], size=size, mode="area")[0]
    if turns:
        out = torch.rot90(out, turns, dims=(1, 2))
    if mirror:
        out = out.flip(-1)
    return out.contiguous()


def load_erp(
    path: str | Path,
    *,
    cfg: ImageConfig | None = None,
    min_width: int | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """A panorama as ``(3, H, W)`` float32 in ``[0, 1]``; see the module docstring.

    ``device="cuda"``: 8-bit 2:1 JPEGs are decoded on the GPU (nvJPEG,
    :func:`decode_jpeg_torch`); other files decode on CPU and move there (logged).
    """
    if device is not None and torch.device(device).type == "cuda":
        try:
            return decode_jpeg_torch(path, cfg=cfg, min_width=min_width, device=device)
        except NotTorchDecodable as exc:
            log.info("%s; decoding on CPU instead", exc)
        return load_erp(path, cfg=cfg, min_width=min_width).to(device)
    pixels = decode_erp(path, cfg=cfg, min_width=min_width)  # (3, H, W) view of the HWC buffer
    if pixels.dtype == torch.uint8:  # one pass: planar float32 (what grid_sample reads fastest)
        return pixels.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
    return pixels.contiguous()


def decode_erp(
    path: str | Path, *, cfg: ImageConfig | None = None, min_width: int | None = None
) -> torch.Tensor:
    """A panorama ``(3, H, W)`` as decoded: uint8 for 8-bit sources (a channels-last view of
    the decode buffer, no copy), float32 in ``[0, 1]`` for deeper ones. What the view sampler
    reads (:func:`load_views`): it converts only the rows it samples."""
    arr = decode_image(path, cfg=cfg or ImageConfig(), min_width=min_width)
    return torch.from_numpy(arr).permute(2, 0, 1)


def load_views(
    path: str | Path, views: ViewsConfig, *, cfg: ImageConfig | None = None
) -> tuple[torch.Tensor, ViewSet]:
    """Decode ``path`` at the resolution ``views`` need and cut them -> ``(erp, ViewSet)``.

    The one path from a file to views: training and eval datasets, ``infer`` and the web demo
    all use it, so their views are identical (``erp`` as :func:`decode_erp` returns it)."""
    erp = decode_erp(path, cfg=cfg, min_width=required_erp_width(views))
    return erp, build_viewset(erp, views)
