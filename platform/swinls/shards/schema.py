"""The Parquet row layout: one row per patch, one fixed-size binary column per band.

Band-major storage makes band projection a column selection: Parquet reads only the chosen
bands. Each band is an H×W little-endian plane of the dataset's image dtype (float16 by
default); the mask is an H×W uint8 plane (0, 1, or 255 where the image had no data), null for
unlabeled patches.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from swinls.patches.errors import PatchError

FORMAT = "swinls-shards/1"
IMAGE_DTYPES = ("float16", "float32")
IGNORE = 255
MASK_COLUMN = "mask"
META_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("region", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("labeled", pa.bool_(), nullable=False),
    pa.field("has_landslide", pa.bool_()),
    pa.field("positive_pixels", pa.int32()),
]
META_COLUMNS = [f.name for f in META_FIELDS]


def shard_schema(bands: tuple[str, ...], shape: tuple[int, int], image_dtype: str) -> pa.Schema:
    if image_dtype not in IMAGE_DTYPES:
        raise ValueError(f"image dtype must be one of {', '.join(IMAGE_DTYPES)}, got {image_dtype!r}")
    plane = shape[0] * shape[1]
    itemsize = np.dtype(image_dtype).itemsize
    fields = list(META_FIELDS)
    fields += [pa.field(band, pa.binary(plane * itemsize), nullable=False) for band in bands]
    fields.append(pa.field(MASK_COLUMN, pa.binary(plane)))
    metadata = {"swinls.format": FORMAT, "swinls.image_dtype": image_dtype,
                "swinls.patch_shape": f"{shape[0]}x{shape[1]}"}
    return pa.schema(fields, metadata=metadata)


def encode_image(image: np.ndarray, image_dtype: str, source: str) -> list[bytes]:
    """H×W×bands → one little-endian plane per band, checking the compact dtype can hold it."""
    with np.errstate(over="ignore"):  # overflow is reported below, naming the file
        compact = image.astype(np.dtype(image_dtype).newbyteorder("<"))
    if not np.isfinite(compact).all():
        limit = float(np.finfo(image_dtype).max)
        raise PatchError(source, f"values exceed the {image_dtype} range (±{limit:g}); ingest with --image-dtype float32")
    return [np.ascontiguousarray(compact[..., b]).tobytes() for b in range(compact.shape[-1])]


def decode_bands(table: pa.Table | pa.RecordBatch, bands: list[str], shape: tuple[int, int], image_dtype: str,
                 out_dtype: str = "float32") -> np.ndarray:
    """The chosen band columns as an N×C×H×W array of `out_dtype` (the stored dtype: a plain
    copy; numpy's float16 conversions are several times slower than torch's)."""
    dtype = np.dtype(image_dtype).newbyteorder("<")
    n = table.num_rows
    out = np.empty((n, len(bands), shape[0], shape[1]), dtype=out_dtype)
    for c, band in enumerate(bands):
        column = table.column(band)
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        row = 0
        for chunk in chunks:
            if len(chunk) == 0:
                continue
            buffer = chunk.buffers()[1]
            width = chunk.type.byte_width
            raw = np.frombuffer(buffer, dtype=np.uint8, count=(chunk.offset + len(chunk)) * width)[chunk.offset * width:]
            out[row:row + len(chunk), c] = raw.view(dtype).reshape(len(chunk), shape[0], shape[1])
            row += len(chunk)
    return out


def decode_masks(table: pa.Table | pa.RecordBatch, shape: tuple[int, int]) -> np.ndarray:
    """N×H×W uint8; unlabeled rows come back all IGNORE."""
    column = table.column(MASK_COLUMN)
    values = column.to_pylist()
    out = np.full((len(values), shape[0], shape[1]), IGNORE, dtype=np.uint8)
    for i, value in enumerate(values):
        if value is not None:
            out[i] = np.frombuffer(value, dtype=np.uint8).reshape(shape)
    return out
