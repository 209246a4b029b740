"""Two-stage balanced training and self-training, under Ray Train or in a plain process.

`run_experiment` and friends load on first use: `swinls.training.step` imports with torch alone.
"""

__all__ = ["RunResult", "run_experiment", "run_uri_for"]


def __getattr__(name: str):
    if name in __all__:
        from swinls.training import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'swinls.training' has no attribute {name!r}")
