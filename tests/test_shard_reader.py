"""The streamed path's shard reader (a plain callable; Ray Data runs it in its tasks): the same rows
whether a shard comes from a bucket whole, by column ranges or from a local file, in blocks no
larger than asked however large its row groups."""

import numpy as np
import pytest

from swinls.data import DataConfig, ShardData
from swinls.data.local import read_split
from swinls.data.ray_data import ShardReader
from swinls.data.transform import BatchProjector
from swinls.shards import IngestOptions, ingest
from tests.helpers import write_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader")
    write_tree(root / "raw" / "north", counts=(11, 0, 0), seed=3)
    return root


@pytest.mark.parametrize("bands, whole_object", [("RGB", False), ("ALL", True)])
def test_a_shard_read_in_small_blocks_gives_the_plain_readers_rows(tree, bucket, bands, whole_object):
    options = IngestOptions(rows_per_shard=8, rows_per_group=8)  # one group a shard, as by default
    for dataset in (f"{bucket}/shards", str(tree / f"local-{bands}")):
        ingest(str(tree / "raw"), dataset, options)
        data = ShardData(DataConfig(uri=dataset, bands=bands))
        reader = ShardReader(BatchProjector.for_data(data, "train"), rows_per_block=3)
        assert reader.whole_object is whole_object  # 3 of 14 bands: ranges; all of them: one GET
        blocks = [block for uri in data.shard_uris("train") for block in reader({"uri": [uri]})]
        sizes = [len(b["key"]) for b in blocks]
        # shards of 8 and 3 rows, less the rows the validation carve takes
        assert max(sizes) == 3 and len(sizes) >= 3 and sum(sizes) == data.rows("train")
        expected = read_split(data, "train")
        for name in ("key", "image", "mask"):
            np.testing.assert_array_equal(np.concatenate([b[name] for b in blocks]), expected[name])


def test_bands_are_stored_plain_and_ids_and_masks_compressed(tree):
    import pyarrow.parquet as pq

    ingest(str(tree / "raw"), str(tree / "codecs"))
    data = ShardData(DataConfig(uri=str(tree / "codecs")))
    group = pq.ParquetFile(data.shard_uris("train")[0]).metadata.row_group(0)
    codecs = {group.column(i).path_in_schema: group.column(i).compression for i in range(group.num_columns)}
    assert codecs["B2"] == codecs["slope"] == "UNCOMPRESSED"
    assert codecs["mask"] == codecs["id"] == "ZSTD"
    with pytest.raises(ValueError, match="band_compression must be one of none, lz4, zstd"):
        IngestOptions(band_compression="gzip")
