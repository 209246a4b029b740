"""The input pipeline: split selection, projection and normalisation, batches, Ray Data."""

from swinls.data.batches import Batch, to_batch, to_batches
from swinls.data.selection import SPLITS, DataConfig, ShardData
from swinls.data.transform import BatchProjector, row_key

__all__ = ["Batch", "BatchProjector", "DataConfig", "SPLITS", "ShardData", "row_key", "to_batch", "to_batches"]
