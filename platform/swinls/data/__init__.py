"""The input pipeline: split selection, projection and normalisation, batches, Ray Data.

Kept free of torch and Ray imports: Ray Data tasks unpickle the projector from here, and a task
worker should not pay for importing torch.
"""

from swinls.data.selection import SPLITS, DataConfig, ShardData
from swinls.data.transform import BatchProjector, row_key

__all__ = ["BatchProjector", "DataConfig", "SPLITS", "ShardData", "row_key"]
