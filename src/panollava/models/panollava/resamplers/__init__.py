"""Resamplers between the vision encoder and the projector, with a registry and builders.

Usage::

    resampler = build_resampler("bimamba", in_dim=1152, out_dim=1024, grid=(16, 16), depth=4)
    resampler = resampler_from_config(cfg.resampler, in_dim=1152, out_dim=1024, grid=(16, 16))
    tokens, grid_out = resampler(features)  # (B*V, 256, 1152) -> (B*V, N_out, 1024); grid|None
"""

from panollava._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "BiMambaResampler": "bimamba",
        "CAbstractorResampler": "c_abstractor",
        "Grid": "base",
        "MLPResampler": "mlp",
        "PerceiverResampler": "perceiver",
        "QFormerResampler": "qformer",
        "RESAMPLERS": "registry",
        "RESAMPLER_SPECS": "schema",
        "Resampler": "base",
        "ResamplerConfig": "schema",
        "ResamplerOutput": "base",
        "ResamplerType": "schema",
        "build_resampler": "registry",
        "check_resampler_compatibility": "schema",
        "resampler_from_config": "registry",
        "resolve_mamba_backend": "selective_scan",
    },
)
