"""``ResamplerConfig`` and the table of resampler facts; pydantic only (no torch), so the root
config schema can import it without a cycle.

    cfg = ResamplerConfig(type="c_abstractor", pool_grid=(8, 8))
    check_resampler_compatibility(cfg, needs_grid=True, reason="stitching 'stride_views'")
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import Field, model_validator

from panollava.strict import StrictModel

__all__ = [
    "RESAMPLER_SPECS",
    "ResamplerConfig",
    "ResamplerSpec",
    "ResamplerType",
    "check_resampler_compatibility",
]

ResamplerType = Literal["mlp", "bimamba", "qformer", "perceiver", "c_abstractor"]
Grid = tuple[int, int]


class ResamplerSpec(NamedTuple):
    """What a resampler kind does to the grid and which config fields it reads (besides type)."""

    keeps_grid: bool
    fields: frozenset[str]


_QUERY_FIELDS = frozenset({"hidden_dim", "depth", "num_queries", "num_heads", "dropout"})
RESAMPLER_SPECS: dict[str, ResamplerSpec] = {
    "mlp": ResamplerSpec(True, frozenset({"hidden_dim", "depth", "dropout"})),
    "bimamba": ResamplerSpec(
        True,
        frozenset(
            {
                "hidden_dim",
                "depth",
                "d_state",
                "d_conv",
                "expand",
                "backend",
                "scan_chunk",
                "dropout",
            }
        ),
    ),
    "qformer": ResamplerSpec(False, _QUERY_FIELDS),
    "perceiver": ResamplerSpec(False, _QUERY_FIELDS),
    "c_abstractor": ResamplerSpec(True, frozenset({"hidden_dim", "depth", "pool_grid", "dropout"})),
}
# Fields whose None means "the resampler class default" (dropped from the builder kwargs).
_NONE_IS_DEFAULT = frozenset({"hidden_dim", "depth", "num_heads"})


class ResamplerConfig(StrictModel):
    """Resampler between the vision encoder and the projector (SYSTEM.md §6).

    Fields a type does not read are ignored by the builder (it logs a warning naming them when
    they were set explicitly), so sweeping ``resampler.type`` over one YAML works.
    """

    type: ResamplerType = Field(
        "mlp", description="mlp | bimamba | qformer | perceiver | c_abstractor"
    )
    hidden_dim: int | None = Field(
        None,
        ge=1,
        description="inner width; None = the type's default (mlp hidden 1536, bimamba d_model "
        "1024, qformer 768, perceiver 1024, c_abstractor channels 1024)",
    )
    depth: int | None = Field(
        None,
        ge=1,
        description="layers/blocks; None = the type's default (mlp 2, bimamba 4, qformer 2, "
        "perceiver 2, c_abstractor 3 before + 3 after pooling)",
    )
    num_queries: int = Field(64, ge=1, description="qformer/perceiver: learned queries per view")
    num_heads: int | None = Field(
        None, ge=1, description="qformer/perceiver attention heads; None = hidden_dim // 64"
    )
    d_state: int = Field(64, ge=1, description="bimamba: SSM state size")
    d_conv: int = Field(4, ge=1, description="bimamba: causal depthwise conv width")
    expand: int = Field(2, ge=1, description="bimamba: inner width = expand * hidden_dim")
    backend: Literal["auto", "mambapy", "mamba_ssm"] = Field(
        "auto",
        description="bimamba scan: mamba_ssm (CUDA kernels), mambapy (pure PyTorch, any device), "
        "auto = mamba_ssm on CUDA when installed, else mambapy; the choice is logged",
    )
    scan_chunk: int | None = Field(
        32,
        ge=1,
        description="bimamba on mambapy: tokens per recomputed scan chunk (bounds activation "
        "memory to one chunk's B*V x chunk x expand*hidden x d_state); null = one scan",
    )
    pool_grid: tuple[int, int] | None = Field(
        None,
        description="c_abstractor: adaptive-average-pool the grid to (rows, cols); None = keep",
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check_sizes(self) -> ResamplerConfig:
        if self.pool_grid is not None and min(self.pool_grid) < 1:
            raise ValueError(f"pool_grid must be (rows, cols) >= 1, got {self.pool_grid}")
        heads, width = self.num_heads, self.hidden_dim
        if heads is not None and width is not None and width % heads:
            raise ValueError(f"hidden_dim={width} is not divisible by num_heads={heads}")
        return self

    @property
    def keeps_grid(self) -> bool:
        """Whether output tokens still sit on a (possibly pooled) patch grid."""
        return RESAMPLER_SPECS[self.type].keeps_grid

    def builder_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``build_resampler(self.type, ...)``: the fields this type reads."""
        kwargs = {name: getattr(self, name) for name in sorted(RESAMPLER_SPECS[self.type].fields)}
        return {k: v for k, v in kwargs.items() if not (v is None and k in _NONE_IS_DEFAULT)}

    def ignored_fields(self) -> list[str]:
        """Explicitly set fields that this ``type`` does not read."""
        used = RESAMPLER_SPECS[self.type].fields | {"type"}
        return sorted(set(self.model_fields_set) - used)

    def output_grid(self, grid: Grid) -> Grid | None:
        """Output grid per view for an input patch ``grid``; ``None`` when the grid is lost."""
        if not self.keeps_grid:
            return None
        if self.type == "c_abstractor" and self.pool_grid is not None:
            ph, pw = self.pool_grid
            if ph > grid[0] or pw > grid[1]:
                raise ValueError(
                    f"resampler.pool_grid {ph}x{pw} must lie within the patch grid "
                    f"{grid[0]}x{grid[1]} (pooling only shrinks)"
                )
            return (ph, pw)
        return grid

    def num_output_tokens(self, grid: Grid) -> int:
        """Tokens per view after resampling an input patch ``grid``."""
        out = self.output_grid(grid)
        return self.num_queries if out is None else out[0] * out[1]


def check_resampler_compatibility(
    cfg: ResamplerConfig,
    *,
    needs_grid: bool,
    reason: str,
    same_grid_as: Grid | None = None,
) -> None:
    """Refuse a resampler that cannot serve a feature needing patch correspondences.

    Args:
        cfg: the resampler config.
        needs_grid: the feature needs output tokens on a patch grid (``stride_views`` stitching,
            overlap losses over patch correspondences, spatial PE).
        reason: the feature, as the user would find it in the config, e.g.
            ``"projector.stitching='stride_views'"``.
        same_grid_as: also require the output grid to equal this input grid (no pooling), for
            features computed on the encoder's own patch grid.

    Raises:
        ValueError: naming the resampler, the feature, and the resamplers that would work.
    """
    if not needs_grid:
        return
    if not cfg.keeps_grid:
        ok = ", ".join(k for k, spec in RESAMPLER_SPECS.items() if spec.keeps_grid)
        raise ValueError(
            f"resampler.type={cfg.type!r} turns each view into {cfg.num_queries} learned-query "
            f"tokens with no patch grid, but {reason} needs tokens on the patch grid; use a "
            f"grid-keeping resampler ({ok}) or change {reason}"
        )
    if same_grid_as is not None:
        out = cfg.output_grid(same_grid_as)
        if out != tuple(same_grid_as):
            raise ValueError(
                f"resampler.type={cfg.type!r} with pool_grid={cfg.pool_grid} changes the patch "
                f"grid {same_grid_as[0]}x{same_grid_as[1]} to {out}, but {reason} needs the "
                f"unpooled grid; set resampler.pool_grid to null or change {reason}"
            )
