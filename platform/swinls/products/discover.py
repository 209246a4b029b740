"""Finding a product's band files without opening any of them: a STAC item (pystac; a local JSON
file or an s3:// object), a SAFE folder (L1C or L2A, its metadata XML giving the quantification
and the per-band offsets), or a folder of per-band files named by band id.

Digital numbers become reflectance as `DN × scale + offset`: from the item's raster:bands when it
has them, from the SAFE metadata, from a band file's own scale and offset tags, else by the
Sentinel-2 convention (10 000 per unit of reflectance, −1000 DN offset from processing baseline
04.00 on, which Collection 1 applied to the whole archive; older baselines named in an item's
s2:processing_baseline get no offset). Floating-point files without tags are taken as reflectance."""

from __future__ import annotations

import json
import posixpath
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from urllib.parse import urlparse

from swinls import storage
from swinls.errors import SourceError
from swinls.products.names import SENTINEL2, band_from_id, band_in_filename, band_named

QUANTIFICATION = 10_000.0
BASELINE_WITH_OFFSET = (4, 0)  # from 04.00 (25 January 2022) L1C and L2A add 1000 DN
RASTER_SUFFIXES = (".tif", ".tiff", ".jp2")
ELEVATION_NAMES = ("dem", "elevation")
SAFE_BAND_ORDER = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")  # band_id 0..12


class ProductError(SourceError):
    pass


@dataclass(frozen=True)
class BandFile:
    href: str  # a local path or an s3:// URI
    scale: float | None = None  # reflectance = DN × scale + offset; None: decided when the file is opened
    offset: float = 0.0
    nodata: float | None = 0.0  # Sentinel-2 marks no data with DN 0


@dataclass(frozen=True)
class Product:
    source: str  # what was given: the item, SAFE or folder
    id: str
    kind: str  # "stac", "safe" or "band files"
    bands: dict[str, BandFile] = field(default_factory=dict)  # Landslide4Sense name → file
    elevation: str | None = None
    datetime: str | None = None  # ISO 8601, UTC

    def files_for(self, needed: tuple[str, ...]) -> dict[str, BandFile]:
        """The optical bands among `needed`, each by its file; one error naming every band missing."""
        optical = [b for b in needed if b in SENTINEL2]
        missing = [b for b in optical if b not in self.bands]
        if missing:
            have = ", ".join(sorted(self.bands, key=list(SENTINEL2).index)) or "none"
            hint = " (an L2A product has no B10: use a model without it)" if "B10" in missing else ""
            raise ProductError(self.source, f"the model needs band {', '.join(missing)}, which the {self.kind} "
                                            f"product lacks{hint}; it has {have}")
        return {b: self.bands[b] for b in optical}


def is_product(uri: str) -> bool:
    """A STAC item, a SAFE folder, or a folder whose rasters are all named by band."""
    stripped = uri.rstrip("/")
    if stripped.lower().endswith(".json") or stripped.upper().endswith(".SAFE"):
        return True
    fs, root = storage.filesystem(uri)
    if not fs.isdir(root):
        return False
    rasters = [p for p in fs.ls(root, detail=False) if p.lower().endswith(RASTER_SUFFIXES)]
    named = [p for p in rasters if band_in_filename(_stem(p))]
    return bool(named) and all(band_in_filename(_stem(p)) or _is_elevation(p) for p in rasters)


def find_product(uri: str) -> Product:
    stripped = uri.rstrip("/")
    if stripped.lower().endswith(".json"):
        return from_stac_item(uri)
    if stripped.upper().endswith(".SAFE"):
        return from_safe(uri)
    return from_band_folder(uri)


def _stem(path: str) -> str:
    return posixpath.basename(path.rstrip("/")).rsplit(".", 1)[0]


def _is_elevation(path: str) -> bool:
    return any(name in _stem(path).lower() for name in ELEVATION_NAMES)


def convention(baseline: str | None = None) -> tuple[float, float]:
    """(scale, offset) by Sentinel-2's convention for a processing baseline such as "04.00": the
    offset of −1000 DN unless the baseline is known to be older (Collection 1 reprocessed the
    archive with it)."""
    offset = -1000.0 / QUANTIFICATION
    match = re.fullmatch(r"(\d+)\.(\d+)", str(baseline or "").strip())
    if match and (int(match.group(1)), int(match.group(2))) < BASELINE_WITH_OFFSET:
        offset = 0.0
    return 1.0 / QUANTIFICATION, offset


# -- STAC -----------------------------------------------------------------------------------------

def _absolute(href: str, item_uri: str) -> str:
    if urlparse(href).scheme or href.startswith("/"):
        return href
    fs, path = storage.filesystem(item_uri)
    return storage.to_uri(fs, posixpath.normpath(posixpath.join(posixpath.dirname(path), href)))


def _asset_band(key: str, asset) -> str | None:
    """The band a single-band asset holds: its eo:bands (STAC 1.0) or bands (1.1), else its key."""
    fields = asset.extra_fields
    entries = fields.get("eo:bands") or fields.get("bands") or []
    if len(entries) > 1:
        return None  # a composite (visual, a stack): not one band's file
    if entries:
        entry = entries[0]
        found = band_named(entry.get("name"), entry.get("common_name"), entry.get("eo:common_name"))
        if found:
            return found
    return band_named(key)


def from_stac_item(uri: str) -> Product:
    import pystac

    try:
        data = json.loads(storage.read_bytes(uri))
    except FileNotFoundError:
        raise ProductError(uri, "no such STAC item") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProductError(uri, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("type") != "Feature":
        raise ProductError(uri, "not a STAC item (a GeoJSON Feature); a collection or a search result is not one scene")
    try:
        item = pystac.Item.from_dict(data, preserve_dict=True)
    except Exception as exc:  # noqa: BLE001 - pystac raises several types for a malformed item
        raise ProductError(uri, f"not a valid STAC item ({exc})") from None
    if not item.assets:
        raise ProductError(uri, f"STAC item {item.id} has no assets: nothing to read")
    default = convention(item.properties.get("s2:processing_baseline") or item.properties.get("processing:version"))
    bands: dict[str, BandFile] = {}
    elevation = None
    for key, asset in item.assets.items():
        if key.lower() in ELEVATION_NAMES or "elevation" in (asset.roles or []):
            elevation = _absolute(asset.href, uri)
            continue
        band = _asset_band(key, asset)
        if band is None or (band in bands and "jp2" in (asset.media_type or key).lower()):
            continue  # Earth Search lists each band as a COG and a JP2: the COG is kept
        # raster:bands (STAC 1.0), or raster:* fields on the asset or its one band (1.1)
        fields = {**asset.extra_fields, **(asset.extra_fields.get("bands") or [{}])[0]}
        raster = (asset.extra_fields.get("raster:bands") or [{}])[0]
        scale = raster.get("scale", fields.get("raster:scale", default[0]))
        offset = raster.get("offset", fields.get("raster:offset", default[1]))
        nodata = raster.get("nodata", fields.get("nodata", 0))
        bands[band] = BandFile(_absolute(asset.href, uri), float(scale), float(offset),
                               None if nodata is None else float(nodata))
    if not bands:
        raise ProductError(uri, f"STAC item {item.id} has no Sentinel-2 band assets (keys: {', '.join(item.assets)}); "
                                "bands are found by eo:bands, bands, or keys such as B02 or blue")
    stamp = item.datetime or item.common_metadata.start_datetime
    return Product(uri, item.id, "stac", bands, elevation, stamp.isoformat() if stamp else None)


# -- SAFE -----------------------------------------------------------------------------------------

def _safe_metadata(fs, root: str, uri: str) -> tuple[ElementTree.Element, str]:
    for level in ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml"):
        path = posixpath.join(root, level)
        if fs.exists(path):
            try:
                return ElementTree.fromstring(fs.cat_file(path)), level
            except ElementTree.ParseError as exc:
                raise ProductError(f"{uri}/{level}", f"malformed XML ({exc})") from None
    raise ProductError(uri, "a SAFE folder without MTD_MSIL1C.xml or MTD_MSIL2A.xml")


def _text(tree: ElementTree.Element, tag: str) -> str | None:
    node = next(tree.iter(tag), None)
    return node.text.strip() if node is not None and node.text else None


def from_safe(uri: str) -> Product:
    fs, root = storage.filesystem(uri)
    root = root.rstrip("/")
    if not fs.isdir(root):
        raise ProductError(uri, "no such SAFE folder")
    tree, level = _safe_metadata(fs, root, uri)
    quantification = float(_text(tree, "BOA_QUANTIFICATION_VALUE") or _text(tree, "QUANTIFICATION_VALUE")
                           or QUANTIFICATION)
    offsets = {}
    for tag in ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET"):
        for node in tree.iter(tag):
            index = int(node.get("band_id", -1))
            if 0 <= index < len(SAFE_BAND_ORDER):
                offsets[SAFE_BAND_ORDER[index]] = float(node.text)
    files: dict[str, tuple[int, str]] = {}  # band → (resolution, path): the finest kept
    for path in fs.find(posixpath.join(root, "GRANULE")):
        if "/IMG_DATA/" not in path or not path.lower().endswith(RASTER_SUFFIXES):
            continue
        band = band_in_filename(_stem(path))
        if band is None:
            continue
        resolution = re.search(r"_(10|20|60)m$", _stem(path))
        metres = int(resolution.group(1)) if resolution else SENTINEL2[band][1]
        if band not in files or metres < files[band][0]:
            files[band] = (metres, path)
    if not files:
        raise ProductError(uri, "a SAFE folder with no band files under GRANULE/*/IMG_DATA")
    bands = {band: BandFile(storage.to_uri(fs, path), 1.0 / quantification, offsets.get(band, 0.0) / quantification)
             for band, (_, path) in files.items()}
    start = _text(tree, "PRODUCT_START_TIME")
    name = posixpath.basename(root)[: -len(".SAFE")] if root.upper().endswith(".SAFE") else posixpath.basename(root)
    return Product(uri, name, f"SAFE {level[7:10]}", bands, None, _iso(start))


def _iso(stamp: str | None) -> str | None:
    import datetime as dt

    if not stamp:
        return None
    try:
        parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).isoformat()


# -- a folder of band files -----------------------------------------------------------------------

def from_band_folder(uri: str) -> Product:
    fs, root = storage.filesystem(uri)
    if not fs.isdir(root):
        raise ProductError(uri, "not a STAC item (.json), a SAFE folder, or a folder of per-band files")
    bands: dict[str, BandFile] = {}
    elevation = None
    for path in sorted(fs.ls(root, detail=False)):
        if not path.lower().endswith(RASTER_SUFFIXES):
            continue
        band = band_in_filename(_stem(path))
        if band is None and _is_elevation(path):
            elevation = storage.to_uri(fs, path)
        elif band is not None:
            if band in bands:
                raise ProductError(uri, f"more than one file holds band {band} ({posixpath.basename(path)} and "
                                        f"{posixpath.basename(bands[band].href)})")
            bands[band] = BandFile(storage.to_uri(fs, path), scale=None)  # the file's own scale, or the convention
    if not bands:
        raise ProductError(uri, "holds no file named by a Sentinel-2 band (…_B02.tif, …_B8A.jp2)")
    return Product(uri, posixpath.basename(root.rstrip("/")), "band files", bands, elevation, None)


__all__ = ["BandFile", "Product", "ProductError", "band_from_id", "find_product", "is_product"]
