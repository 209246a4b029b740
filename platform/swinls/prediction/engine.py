"""Running prediction work: chunks read → model → sink, in this process or on Ray Data.

Work is a number of read units and a picklable `read(unit)` that returns rows of model inputs
(`image`, normalised N×C×S×S) with whatever the sink needs to place the results. A unit holds a
whole number of batches (the last unit may end short), and both paths cut the same batches
from it, so they compute the same margins. In this process a reader thread keeps the next
units coming while the model runs; on Ray, reading is a task per unit, the model a pool of
actors (one per GPU with `use_gpu`), and the driver receives results in order to assemble them.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from swinls.prediction.progress import Progress


@dataclass
class Work:
    unit: str  # what a row is: "patches" or "windows"
    total: int  # rows
    chunks: int  # read units, each a whole number of batches but the last
    read: Callable[[int], dict[str, np.ndarray]]  # picklable; a unit's rows, `image` among them
    batch_size: int


class Sink(Protocol):
    def accept(self, batch: dict[str, np.ndarray], margins: np.ndarray) -> None: ...


def _close(read) -> None:
    if hasattr(read, "close"):
        read.close()


def run_in_process(work: Work, predictor, sink: Sink, progress: Progress, prefetch: int = 2) -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="predict-read") as pool:  # one thread: readers keep files open
        pending = deque(pool.submit(work.read, i) for i in range(min(prefetch, work.chunks)))
        submitted = len(pending)
        try:
            while pending:
                rows = pending.popleft().result()
                if submitted < work.chunks:
                    pending.append(pool.submit(work.read, submitted))
                    submitted += 1
                image = rows.pop("image")
                for start in range(0, len(image), work.batch_size):
                    margins = predictor.margins(image[start:start + work.batch_size])
                    sink.accept({k: v[start:start + work.batch_size] for k, v in rows.items()}, margins)
                    progress.add(len(margins))
        finally:
            for future in pending:
                future.cancel()
            pool.submit(_close, work.read).result()


class ReadChunks:
    """Ray Data task: unit numbers → rows of model inputs."""

    def __init__(self, read: Callable[[int], dict[str, np.ndarray]]) -> None:
        self.read = read

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            parts = [self.read(int(chunk)) for chunk in batch["chunk"]]
        finally:
            _close(self.read)
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


class PredictBatches:
    """Ray Data actor: holds the model; rows in, the same rows out with `margin` for `image`."""

    def __init__(self, model_uri: str, use_gpu: bool, bf16: bool | None, threads: int | None) -> None:
        import torch

        from swinls.prediction.model import load_for_prediction

        if threads:
            torch.set_num_threads(threads)
        self.predictor = load_for_prediction(model_uri, use_gpu=use_gpu, bf16=bf16).predictor

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {key: value for key, value in batch.items() if key != "image"}
        out["margin"] = self.predictor.margins(batch["image"])
        return out


def model_actors(use_gpu: bool, cpus_per_actor: float) -> int:
    """One actor per GPU of the cluster, or as many CPU actors as leave a CPU for reading."""
    import ray

    resources = ray.cluster_resources()
    if use_gpu:
        return max(1, int(resources.get("GPU", 0)))
    return max(1, int((resources.get("CPU", 1) - 1) // cpus_per_actor))


def run_with_ray(work: Work, model_uri: str, sink: Sink, progress: Progress, *, use_gpu: bool, bf16: bool | None,
                 actors: int | None = None, cpus_per_actor: float | None = None) -> None:
    import ray.data

    cpus = cpus_per_actor if cpus_per_actor is not None else (1.0 if use_gpu else 2.0)
    items = ray.data.from_items([{"chunk": i} for i in range(work.chunks)], override_num_blocks=max(1, work.chunks))
    items.context.execution_options.preserve_order = True  # the driver assembles rows in order
    items.context.enable_progress_bars = False  # Progress reports rows done; Ray's bars would repeat it
    items.context.raise_original_map_exception = True  # a bad file surfaces as itself, not as "UDF failed"
    rows = items.map_batches(ReadChunks(work.read), batch_size=1, batch_format="numpy")
    predicted = rows.map_batches(
        PredictBatches, fn_constructor_kwargs={"model_uri": model_uri, "use_gpu": use_gpu, "bf16": bf16,
                                               "threads": None if use_gpu else max(1, int(cpus))},
        batch_size=work.batch_size, batch_format="numpy",  # units are whole batches: the same batches as in-process
        compute=ray.data.ActorPoolStrategy(size=actors or model_actors(use_gpu, cpus)),
        num_cpus=cpus, num_gpus=1 if use_gpu else 0)
    for batch in predicted.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
        margins = batch.pop("margin")
        sink.accept(batch, margins)
        progress.add(len(margins))


def user_error(exc: BaseException, kinds: tuple[type, ...]) -> BaseException | None:
    """The user-facing error (bad file, bad band) inside what Ray raised around it, if any."""
    seen = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        original = getattr(current, "cause", None)  # Ray's task error carries the worker's exception here
        if isinstance(original, kinds):
            return original
        if isinstance(current, kinds):
            return current
        stack.extend([current.__cause__, current.__context__, getattr(current, "cause", None)])
    return None
