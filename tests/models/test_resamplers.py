"""Resamplers: shapes/grids/gradients for every kind, bimamba against an independent sequential
selective-scan reference, Q-Former non-causality, C-Abstractor pooling, config and builder."""

from __future__ import annotations

import copy
import logging
import sys

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from panollava.models.panollava.resamplers import (
    RESAMPLER_SPECS,
    RESAMPLERS,
    BiMambaResampler,
    QFormerResampler,
    ResamplerConfig,
    build_resampler,
    check_resampler_compatibility,
    resampler_from_config,
    selective_scan,
)
from panollava.models.panollava.resamplers.bimamba import MambaMixer
from panollava.models.panollava.resamplers.selective_scan import (
    resolve_mamba_backend,
    selective_scan_parallel,
)

IN_DIM, OUT_DIM, GRID, NUM_VIEWS = 32, 48, (4, 4), 3
TINY: dict[str, dict] = {
    "mlp": {"hidden_dim": 24, "depth": 2},
    "bimamba": {"hidden_dim": 16, "depth": 2, "d_state": 4, "expand": 2, "backend": "mambapy"},
    "qformer": {"hidden_dim": 16, "depth": 2, "num_queries": 5, "num_heads": 2},
    "perceiver": {"hidden_dim": 16, "depth": 2, "num_queries": 5, "num_heads": 2},
    "c_abstractor": {"hidden_dim": 16, "depth": 1, "pool_grid": (2, 2)},
}
EXPECTED_GRID = {
    "mlp": GRID,
    "bimamba": GRID,
    "qformer": None,
    "perceiver": None,
    "c_abstractor": (2, 2),
}


def _perturb(module: torch.nn.Module, scale: float = 0.1) -> None:
    """Move every parameter off its init (unit LayerNorms, zero biases) so tests see all terms."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


def test_registry_matches_spec_table() -> None:
    assert set(RESAMPLERS) == set(RESAMPLER_SPECS) == set(TINY)
    for kind, cls in RESAMPLERS.items():
        assert cls.keeps_grid == RESAMPLER_SPECS[kind].keeps_grid, kind


@pytest.mark.parametrize("kind", sorted(TINY))
def test_forward_backward_shapes_and_grads(kind: str) -> None:
    torch.manual_seed(0)
    resampler = build_resampler(kind, in_dim=IN_DIM, out_dim=OUT_DIM, grid=GRID, **TINY[kind])
    features = torch.randn(NUM_VIEWS, GRID[0] * GRID[1], IN_DIM, requires_grad=True)
    tokens, grid_out = resampler(features)
    n_out = resampler.num_output_tokens()
    assert tokens.shape == (NUM_VIEWS, n_out, OUT_DIM)
    assert grid_out == EXPECTED_GRID[kind] == resampler.output_grid(GRID)
    if grid_out is not None:
        assert n_out == grid_out[0] * grid_out[1]
    tokens.square().mean().backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()
    for name, p in resampler.named_parameters():
        assert p.grad is not None, f"{kind}: no gradient reaches {name}"
        assert torch.isfinite(p.grad).all(), f"{kind}: non-finite gradient in {name}"


@pytest.mark.parametrize("kind", sorted(TINY))
def test_config_builds_every_kind_and_agrees_on_grid(kind: str) -> None:
    cfg = ResamplerConfig(type=kind, **TINY[kind])
    resampler = resampler_from_config(cfg, in_dim=IN_DIM, out_dim=OUT_DIM, grid=GRID)
    assert type(resampler) is RESAMPLERS[kind]
    assert cfg.keeps_grid == resampler.keeps_grid
    assert cfg.output_grid(GRID) == resampler.output_grid(GRID)
    assert cfg.num_output_tokens(GRID) == resampler.num_output_tokens(GRID)


def test_forward_rejects_tokens_that_do_not_fill_the_grid() -> None:
    resampler = build_resampler("mlp", in_dim=IN_DIM, out_dim=OUT_DIM, grid=GRID, hidden_dim=8)
    with pytest.raises(ValueError, match="do not fill the grid 4x4"):
        resampler(torch.randn(2, 15, IN_DIM))
    out = resampler(torch.randn(2, 6, IN_DIM), grid=(2, 3))  # per-call grid override
    assert out.grid == (2, 3)


# --------------------------------------------------------------------------- bimamba reference


def reference_selective_scan(u, delta, A, B, C, D):
    """Plain loop over time. u, delta (b, L, E); A (E, N); B, C (b, L, N); D (E,) -> (b, L, E)."""
    b, length, e = u.shape
    h = torch.zeros(b, e, A.shape[1], dtype=u.dtype)
    ys = []
    for t in range(length):
        dt = delta[:, t, :, None]  # (b, E, 1)
        h = torch.exp(dt * A) * h + dt * B[:, t, None, :] * u[:, t, :, None]  # (b, E, N)
        ys.append((h * C[:, t, None, :]).sum(-1) + D * u[:, t])  # (b, E)
    return torch.stack(ys, dim=1)


def reference_mixer(m: MambaMixer, x: torch.Tensor) -> torch.Tensor:
    """Mamba mixer from its parameters: explicit causal conv taps and the loop scan."""
    e, length = m.d_inner, x.shape[1]
    xz = x @ m.in_proj.weight.T
    u, z = xz[..., :e], xz[..., e:]  # (b, L, E)
    taps = m.conv1d.weight[:, 0, :]  # (E, K)
    k = taps.shape[1]
    padded = F.pad(u, (0, 0, k - 1, 0))  # (b, K-1+L, E): zeros before t=0
    u = sum(taps[:, j] * padded[:, j : j + length] for j in range(k)) + m.conv1d.bias
    u = u * torch.sigmoid(u)
    dbc = u @ m.x_proj.weight.T
    dt, B, C = dbc[..., : m.dt_rank], dbc[..., m.dt_rank : -m.d_state], dbc[..., -m.d_state :]
    delta = torch.log1p(torch.exp(dt @ m.dt_proj.weight.T + m.dt_proj.bias))
    y = reference_selective_scan(u, delta, -torch.exp(m.A_log), B, C, m.D)
    return (y * z * torch.sigmoid(z)) @ m.out_proj.weight.T


def reference_bimamba(r: BiMambaResampler, x: torch.Tensor) -> torch.Tensor:
    def ln(norm, t):
        return F.layer_norm(t, t.shape[-1:], norm.weight, norm.bias, norm.eps)

    h = x @ r.in_proj.weight.T + r.in_proj.bias
    for block in r.blocks:
        n = ln(block.norm, h)
        fwd = reference_mixer(block.forward_mixer, n)
        bwd = reference_mixer(block.backward_mixer, n.flip(1)).flip(1)
        h = h + (fwd + bwd) / 2
    return ln(r.norm, h) @ r.out_proj.weight.T + r.out_proj.bias


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_parallel_scan_matches_loop(chunk_size: int | None) -> None:
    torch.manual_seed(1)
    b, length, e, n = 2, 13, 6, 4  # not a power of two (pscan pads), chunks 4+4+4+1
    f64 = {"dtype": torch.float64, "requires_grad": True}
    u, B, C = (
        torch.randn(b, length, e, **f64),
        torch.randn(b, length, n, **f64),
        torch.randn(b, length, n, **f64),
    )
    delta = torch.randn(b, length, e, dtype=torch.float64).exp().requires_grad_()
    A = (-torch.rand(e, n, dtype=torch.float64) * 3 - 0.1).requires_grad_()
    D = torch.randn(e, **f64)
    inputs = (u, delta, A, B, C, D)
    got = selective_scan_parallel(*inputs, chunk_size=chunk_size)
    expected = reference_selective_scan(*inputs)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    weights = torch.randn_like(got)  # gradients agree too (pscan backward, chunk recompute)
    grads = torch.autograd.grad((got * weights).sum(), inputs)
    expected_grads = torch.autograd.grad((expected * weights).sum(), inputs)
    for g, eg in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, eg, atol=1e-4, rtol=0)
    got32 = selective_scan_parallel(*(t.float() for t in inputs), chunk_size=chunk_size)
    torch.testing.assert_close(got32.double(), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("scan_chunk", [None, 4])
def test_bimamba_matches_sequential_reference(scan_chunk: int | None) -> None:
    torch.manual_seed(2)
    grid = (3, 5)  # L = 15
    r = BiMambaResampler(
        in_dim=IN_DIM,
        out_dim=OUT_DIM,
        grid=grid,
        hidden_dim=16,
        depth=2,
        d_state=4,
        d_conv=4,
        expand=2,
        backend="mambapy",
        scan_chunk=scan_chunk,
    ).double()
    _perturb(r)
    with torch.no_grad():  # steps Δ ~ 0.3..2 so that the decay exp(ΔA) really matters
        for mixer in r.modules():
            if isinstance(mixer, MambaMixer):
                mixer.dt_proj.bias.uniform_(-1.0, 1.5)
    x = torch.randn(NUM_VIEWS, grid[0] * grid[1], IN_DIM, dtype=torch.float64)
    got, out_grid = r(x)
    assert out_grid == grid
    expected = reference_bimamba(r, x)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    got32 = copy.deepcopy(r).float()(x.float()).tokens  # the training dtype, same tolerance
    torch.testing.assert_close(got32.double(), expected, atol=1e-4, rtol=0)


def test_bimamba_is_bidirectional() -> None:
    torch.manual_seed(3)
    r = build_resampler("bimamba", in_dim=IN_DIM, out_dim=OUT_DIM, grid=GRID, **TINY["bimamba"])
    x = torch.randn(1, 16, IN_DIM, requires_grad=True)
    r(x).tokens[0, 0].sum().backward()  # first token must see the last one (reversed scan)
    assert x.grad[0, -1].abs().sum() > 0
    mixer_grad = torch.autograd.grad(
        r.blocks[0].forward_mixer(x[:, :, :16], backend="mambapy")[0, 0].sum(), x
    )[0]
    assert mixer_grad[0, 1:].abs().sum() == 0  # while a single mixer is causal


def test_bimamba_under_bf16_autocast_scans_in_float32() -> None:
    torch.manual_seed(6)
    r = build_resampler("bimamba", in_dim=IN_DIM, out_dim=OUT_DIM, grid=GRID, **TINY["bimamba"])
    x = torch.randn(2, 16, IN_DIM)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = r(x).tokens
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), r(x).tokens, atol=0.1, rtol=0.05)


def test_bimamba_backend_choice_is_explicit_and_logged(caplog) -> None:
    r = build_resampler(
        "bimamba",
        in_dim=IN_DIM,
        out_dim=OUT_DIM,
        grid=GRID,
        **{**TINY["bimamba"], "backend": "auto"},
    )
    with caplog.at_level(logging.INFO, logger="panollava.models.panollava.resamplers.bimamba"):
        r(torch.randn(1, 16, IN_DIM))
    assert r.active_backend == "mambapy"
    assert "selective scan on mambapy" in caplog.text
    strict = build_resampler(
        "bimamba",
        in_dim=IN_DIM,
        out_dim=OUT_DIM,
        grid=GRID,
        **{**TINY["bimamba"], "backend": "mamba_ssm"},
    )
    with pytest.raises(RuntimeError, match="CUDA only"):
        strict(torch.randn(1, 16, IN_DIM))
    with pytest.raises(ValueError, match="unknown mamba backend"):
        BiMambaResampler(in_dim=8, out_dim=8, grid=(2, 2), backend="cuda")  # type: ignore[arg-type]


def fake_mamba_ssm_selective_scan(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False
):
    """mamba_ssm's documented selective_scan_fn contract, on the loop reference.

    u, delta, z: (b, E, L); A: (E, N); B, C: (b, N, L); returns y * silu(z) as (b, E, L).
    """
    delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    y = reference_selective_scan(u.mT, delta.mT, A, B.mT, C.mT, D)  # (b, L, E)
    return (y * F.silu(z.mT)).mT


def test_mamba_ssm_calling_convention_matches_mambapy(monkeypatch) -> None:
    monkeypatch.setattr(
        selective_scan, "mamba_ssm_selective_scan", lambda: fake_mamba_ssm_selective_scan
    )
    torch.manual_seed(5)
    mixer = MambaMixer(16, d_state=4, expand=2, scan_chunk=4).double()
    _perturb(mixer)
    x = torch.randn(2, 10, 16, dtype=torch.float64)
    # 1e-6, not 1e-12: the kernel path hands D and the Δ bias over in float32, as mamba_ssm needs
    torch.testing.assert_close(
        mixer(x, backend="mamba_ssm"), mixer(x, backend="mambapy"), atol=1e-6, rtol=0
    )


def test_auto_backend_resolution(monkeypatch) -> None:
    cuda = torch.device("cuda")  # resolution only looks at the device type
    monkeypatch.setattr(selective_scan, "mamba_ssm_installed", lambda: False)
    assert resolve_mamba_backend("auto", cuda) == ("mambapy", "auto: mamba_ssm is not installed")
    assert resolve_mamba_backend("mambapy", cuda)[0] == "mambapy"
    monkeypatch.setitem(sys.modules, "mamba_ssm", None)  # importing it now raises ImportError
    selective_scan.mamba_ssm_selective_scan.cache_clear()
    with pytest.raises(ImportError, match=r"install mamba-ssm or set resampler\.backend"):
        resolve_mamba_backend("mamba_ssm", cuda)
    monkeypatch.setattr(selective_scan, "mamba_ssm_installed", lambda: True)
    with pytest.raises(ImportError):  # installed but broken: no silent fallback
        resolve_mamba_backend("auto", cuda)
    monkeypatch.setattr(
        selective_scan, "mamba_ssm_selective_scan", lambda: fake_mamba_ssm_selective_scan
    )
    assert resolve_mamba_backend("auto", cuda)[0] == "mamba_ssm"
    assert resolve_mamba_backend("auto", torch.device("cpu"))[0] == "mambapy"


# --------------------------------------------------------------------------- query resamplers


@pytest.mark.parametrize("self_attention", [True, False])
def test_qformer_queries_are_not_causal(self_attention: bool) -> None:
    torch.manual_seed(4)
    q = QFormerResampler(
        in_dim=IN_DIM,
        out_dim=OUT_DIM,
        grid=GRID,
        hidden_dim=16,
        depth=2,
        num_queries=5,
        num_heads=2,
        self_attention=self_attention,
    ).eval()
    x = torch.randn(2, 16, IN_DIM)
    before = q(x).tokens
    with torch.no_grad():
        # change the last query's init only (randomly: LayerNorm would cancel a constant)
        q.queries[-1].add_(torch.randn(16))
    after = q(x).tokens
    first_changed = not torch.allclose(before[:, 0], after[:, 0], atol=1e-6)
    assert first_changed == self_attention  # no causal mask: query 0 sees query -1
    assert not torch.allclose(before[:, -1], after[:, -1])


def test_c_abstractor_pooling_grid() -> None:
    common = {"in_dim": IN_DIM, "out_dim": OUT_DIM, "hidden_dim": 16, "depth": 1}
    pooled = build_resampler("c_abstractor", grid=(6, 8), pool_grid=(3, 4), **common)
    tokens, grid = pooled(torch.randn(2, 48, IN_DIM))
    assert grid == (3, 4) and tokens.shape == (2, 12, OUT_DIM)
    full = build_resampler("c_abstractor", grid=(6, 8), **common)
    tokens, grid = full(torch.randn(2, 48, IN_DIM))
    assert grid == (6, 8) and tokens.shape == (2, 48, OUT_DIM)
    with pytest.raises(ValueError, match="pool_grid 8x8 must lie within the patch grid 4x4"):
        build_resampler("c_abstractor", grid=(4, 4), pool_grid=(8, 8), **common)


# --------------------------------------------------------------------------- config and builder


def test_config_is_strict_and_warns_about_ignored_fields(caplog) -> None:
    with pytest.raises(ValidationError, match="num_querys"):
        ResamplerConfig(type="qformer", num_querys=8)
    with pytest.raises(ValidationError, match="not divisible by num_heads"):
        ResamplerConfig(type="qformer", hidden_dim=30, num_heads=4)
    cfg = ResamplerConfig(type="mlp", hidden_dim=8, d_state=16, pool_grid=(2, 2))
    assert cfg.ignored_fields() == ["d_state", "pool_grid"]
    assert cfg.builder_kwargs() == {"hidden_dim": 8, "dropout": 0.0}  # depth None -> default
    with caplog.at_level(logging.WARNING):
        resampler_from_config(cfg, in_dim=IN_DIM, out_dim=OUT_DIM, grid=GRID)
    assert "ignores the options ['d_state', 'pool_grid']" in caplog.text


def test_builder_rejects_unknown_kind_and_options() -> None:
    with pytest.raises(ValueError, match="unknown resampler 'mamba'; valid: mlp, bimamba"):
        build_resampler("mamba", in_dim=8, out_dim=8, grid=(2, 2))
    with pytest.raises(ValueError, match=r"unknown options \['num_queries'\]"):
        build_resampler("mlp", in_dim=8, out_dim=8, grid=(2, 2), num_queries=4)


def test_compatibility_check_refuses_grid_losing_resamplers() -> None:
    reason = "projector.stitching='stride_views'"
    for kind in ("qformer", "perceiver"):
        with pytest.raises(ValueError, match=rf"'{kind}'.*no patch grid.*stride_views.*mlp"):
            check_resampler_compatibility(
                ResamplerConfig(type=kind), needs_grid=True, reason=reason
            )
        check_resampler_compatibility(ResamplerConfig(type=kind), needs_grid=False, reason=reason)
    for kind in ("mlp", "bimamba", "c_abstractor"):
        check_resampler_compatibility(
            ResamplerConfig(type=kind), needs_grid=True, reason=reason, same_grid_as=(16, 16)
        )
    pooled = ResamplerConfig(type="c_abstractor", pool_grid=(8, 8))
    check_resampler_compatibility(pooled, needs_grid=True, reason=reason)
    with pytest.raises(ValueError, match="changes the patch grid 16x16 to"):
        check_resampler_compatibility(
            pooled, needs_grid=True, reason="losses.overlap", same_grid_as=(16, 16)
        )
