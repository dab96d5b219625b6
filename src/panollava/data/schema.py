"""Config sections of the data subsystem (pure pydantic, no torch), mounted into ``data``.

``data.columns`` names the table columns (``None`` = detect the QuIC-360 names and their
aliases), ``data.augment`` the train-time augmentations that respect the sphere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from panollava.strict import StrictModel

__all__ = [
    "QUERY_ALIASES",
    "REFERENCE_ALIASES",
    "URL_ALIASES",
    "AugmentConfig",
    "ColumnsConfig",
    "DataConfig",
    "ImageConfig",
]

URL_ALIASES = ("url", "image", "image_path", "path")
QUERY_ALIASES = ("query", "instruction")
REFERENCE_ALIASES = ("annotation", "response", "reference", "caption")


class ColumnsConfig(StrictModel):
    """Column names of annotation tables; ``None`` picks the one alias present in the header."""

    url: str | None = Field(None, description=f"image path/URL column; None = one of {URL_ALIASES}")
    query: str | None = Field(None, description=f"query column; None = one of {QUERY_ALIASES}")
    reference: str | None = Field(
        None, description=f"caption column; None = one of {REFERENCE_ALIASES}"
    )


class AugmentConfig(StrictModel):
    """Train-time augmentations (off by default). Randomness comes from a generator seeded by
    ``(seed, epoch, sample index)``, so a resumed run sees exactly the same samples.

    Yaw rotation rolls the ERP columns circularly before the views are cut (a true rotation of
    the sphere about its vertical axis). It changes where "in front" is: keep it off when the
    captions name absolute directions ("behind the viewer"); relative ones survive it.
    Photometric jitter scales brightness/contrast/saturation by factors in ``[1 - x, 1 + x]``.
    Hue is deliberately absent: it changes the colours that captions name.
    """

    enabled: bool = Field(False, description="master switch; False ignores everything below")
    yaw_max_deg: float = Field(
        180.0, ge=0, le=180, description="yaw rotation drawn uniformly in [-max, max]"
    )
    brightness: float = Field(0.0, ge=0, lt=1, description="brightness factor range ±x")
    contrast: float = Field(0.0, ge=0, lt=1, description="contrast factor range ±x")
    saturation: float = Field(0.0, ge=0, lt=1, description="saturation factor range ±x")


class ImageConfig(StrictModel):
    """How panorama files are decoded (see ``panollava.data.images``)."""

    aspect_policy: Literal["error", "resample", "pad"] = Field(
        "resample",
        description="ERP not 2:1 -> error; resample to 2:1 (warns); pad the poles to 2:1 (warns)",
    )
    aspect_tolerance: float = Field(0.02, ge=0, description="relative deviation accepted as 2:1")
    max_pixels: int = Field(
        300_000_000, gt=0, description="refuse larger images (decompression-bomb guard)"
    )
    draft_decode: bool = Field(True, description="decode JPEGs at reduced scale when views allow")
    min_size: int = Field(16, ge=1, description="refuse images smaller than this on either side")


class DataConfig(StrictModel):
    """The one place where data paths are set. Later stages refer to splits by name."""

    train: list[Path] = Field(default_factory=list)
    valid: list[Path] = Field(default_factory=list)
    test: list[Path] = Field(default_factory=list)
    image_root: Path | None = Field(
        None, description="base for relative image paths (default: the table's own folder)"
    )
    cache_dir: Path | None = Field(
        None, description="local cache for http(s) image URLs (`panollava data download --out`)"
    )
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    skip_invalid: bool = Field(
        False,
        description="skip broken rows (listed in the run folder) instead of refusing the data",
    )
    check_images: Literal["decode", "header", "off"] = Field(
        "header",
        description="image checks before training: full (draft) decode, header only, or none",
    )
    view_cache_mb: float = Field(
        0.0,
        ge=0,
        description="keep each panorama's views in memory after the first decode, up to this "
        "many MiB per dataset (float32: views x 3 x tile_size² x 4 bytes each); 0 = off",
    )

    @model_validator(mode="after")
    def _cache_needs_fixed_views(self) -> DataConfig:
        if self.view_cache_mb > 0 and self.augment.enabled:
            raise ValueError(
                "data.view_cache_mb: augmented views differ every epoch and cannot be cached; "
                "set data.view_cache_mb=0 or data.augment.enabled=false"
            )
        return self
