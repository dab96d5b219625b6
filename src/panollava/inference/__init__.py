"""Answering queries with a trained run or an off-the-shelf VLM: run loading, the Predictor,
export, and the ``infer``/``export`` commands."""

from panollava._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "LoadedRun": "run",
        "Predictor": "predictor",
        "RunNotTrainedError": "run",
        "export_run": "export",
        "load_run": "run",
        "resolve_device": "predictor",
        "resolve_dtype": "predictor",
    },
)
