"""Labelled regions from scenes and landslide inventories: scenes cut into patches on the scene
grid, the inventory rasterised on it, windows split by spatial blocks, then ingested like any
Landslide4Sense tree (`jobs/ingest.py --scenes`)."""

from swinls.regions.cut import SceneCutOptions, cut_region

__all__ = ["SceneCutOptions", "cut_region"]
