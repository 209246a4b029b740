"""STAC for a prediction: an item per scene (its mask, probability and quick-look as assets; the
input's id, datetime and footprint; the model's card, version, bands and decision) and a
collection for the batch, written with pystac. Hrefs are relative, so the folder reads the same
on disk and in a bucket.

The acquisition time comes from the input (the GeoTIFF's TIFFTAG_DATETIME); without it, the item's datetime is the prediction's and
`swinls:input_datetime` says it is unknown (null).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from swinls.prediction.rasters import SceneInfo

COLLECTION = "collection.json"
ITEM_SUFFIX = "-landslides"
MASK_CLASSES = ({"value": 0, "name": "no-landslide", "description": "no landslide predicted"},
                {"value": 1, "name": "landslide", "description": "landslide predicted"})


@dataclass(frozen=True)
class ModelFacts:
    """What an item says about the model that made it."""

    uri: str  # the published version folder
    card: str  # its model_card.json
    version: str  # the version folder's name
    bands: tuple[str, ...]
    decision: str  # "argmax", or "P(landslide) >= t"
    threshold: float | None  # t; None for argmax
    experiment: str = ""
    trial: str = ""


def item_name(scene: str) -> str:
    return f"{scene}_item.json"


def footprint(info: SceneInfo, points_per_edge: int = 21) -> tuple[dict, list[float]]:
    """The scene's outline in EPSG:4326 (edges densified, so a UTM square stays true) and its bbox."""
    import numpy as np
    from rasterio.transform import Affine, array_bounds
    from rasterio.warp import transform

    west, south, east, north = array_bounds(info.height, info.width, Affine(*info.transform))
    corners = [(west, south), (east, south), (east, north), (west, north), (west, south)]
    steps = np.linspace(0, 1, points_per_edge, endpoint=False)
    ring = [(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t) for (x0, y0), (x1, y1) in zip(corners, corners[1:]) for t in steps]
    xs, ys = transform(info.crs, "EPSG:4326", [p[0] for p in ring], [p[1] for p in ring])
    coordinates = [(round(x, 7), round(y, 7)) for x, y in zip(xs, ys)]
    polygon = {"type": "Polygon", "coordinates": [[*coordinates, coordinates[0]]]}
    return polygon, [min(xs), min(ys), max(xs), max(ys)]


def scene_item(info: SceneInfo, model: ModelFacts, assets: dict[str, str], created: dt.datetime):
    """A pystac Item for one scene's outputs; `assets` maps role (mask, probability, quicklook) to
    a file name beside the item."""
    import pystac
    from pystac.extensions.projection import ProjectionExtension

    # a scene without a CRS has no place on Earth: STAC's null geometry, not pixel coordinates
    geometry, bbox = footprint(info) if info.crs is not None else (None, None)
    acquired = dt.datetime.fromisoformat(info.datetime) if info.datetime else None
    item = pystac.Item(
        id=f"{info.name}{ITEM_SUFFIX}", geometry=geometry, bbox=bbox, datetime=acquired or created,
        properties={"created": created.isoformat(), "swinls:input": info.uri,
                    "swinls:input_datetime": acquired.isoformat() if acquired else None,
                    "swinls:model": model.uri, "swinls:model_card": model.card,
                    "swinls:model_version": model.version, "swinls:bands": list(model.bands),
                    "swinls:decision": model.decision, "swinls:threshold": model.threshold, "swinls:experiment": model.experiment,
                    "swinls:trial": model.trial})
    kinds = {"mask": ("Landslide mask (0 none, 1 landslide, 255 nodata)", ["data"], pystac.MediaType.COG),
             "probability": ("P(landslide), NaN where nodata", ["data"], pystac.MediaType.COG),
             "quicklook": ("True colour with the predicted landslides outlined", ["overview"], pystac.MediaType.PNG)}
    for role, name in assets.items():
        title, roles, media = kinds[role]
        item.add_asset(role, pystac.Asset(href=f"./{name}", title=title, roles=roles, media_type=media))
    projection = ProjectionExtension.ext(item, add_if_missing=True)
    projection.shape = [info.height, info.width]
    projection.transform = list(info.transform)
    projection.code = _crs_code(info.crs)
    if projection.code is None and info.crs is not None:
        projection.wkt2 = info.crs
    item.properties["swinls:mask_classes"] = list(MASK_CLASSES)
    return item


def _crs_code(crs_wkt: str | None) -> str | None:
    if crs_wkt is None:
        return None
    from rasterio.crs import CRS

    authority = CRS.from_wkt(crs_wkt).to_authority()
    return f"{authority[0]}:{authority[1]}" if authority else None


def write_items(folder: Path, items: list, collection_id: str, description: str) -> list[str]:
    """Each item as `<scene>_item.json` and a collection over them as collection.json in `folder`;
    returns the file names written."""
    import pystac
    from pystac.layout import CustomLayoutStrategy

    collection = pystac.Collection(
        id=collection_id, description=description,
        extent=pystac.Extent(pystac.SpatialExtent([_union([i.bbox for i in items])]),
                             pystac.TemporalExtent([[min(i.datetime for i in items), max(i.datetime for i in items)]])),
        license="other")
    collection.set_self_href(str(folder / COLLECTION))
    # beside their assets, not in pystac's default <id>/<id>.json
    beside = CustomLayoutStrategy(item_func=lambda item, parent: str(folder / item_name(scene_of(item))))
    for item in items:
        collection.add_item(item, strategy=beside)
    collection.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return [COLLECTION, *(item_name(scene_of(item)) for item in items)]


def scene_of(item) -> str:
    return item.id.removesuffix(ITEM_SUFFIX)


def _union(boxes: list[list[float] | None]) -> list[float]:
    boxes = [b for b in boxes if b]
    if not boxes:
        return [-180.0, -90.0, 180.0, 90.0]  # the spec's "anywhere"
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
