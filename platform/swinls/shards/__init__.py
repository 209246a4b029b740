"""Parquet shard datasets: the row layout, the manifest, and ingest from raw patches."""

from swinls.shards.ingest import IngestError, IngestOptions, IngestReport, ingest
from swinls.shards.manifest import MANIFEST_NAME, Manifest, ManifestError, RegionEntry, ShardEntry

__all__ = ["IngestError", "IngestOptions", "IngestReport", "MANIFEST_NAME", "Manifest", "ManifestError",
           "RegionEntry", "ShardEntry", "ingest"]
