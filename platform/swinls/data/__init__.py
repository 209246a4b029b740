"""The input pipeline: split selection, projection and normalisation, batches, Ray Data.

Kept free of torch and Ray imports: Ray Data tasks unpickle the projector from here, and a task
worker should not pay for importing torch. The names below load on first use, so that
`swinls.data.batches` and `swinls.data.resident` import with torch alone (the GPU benchmarks
run where fsspec and pyarrow may be missing).
"""

_EXPORTS = {"SPLITS": "selection", "DataConfig": "selection", "ShardData": "selection",
            "BatchProjector": "transform", "row_key": "transform"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"swinls.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'swinls.data' has no attribute {name!r}")
