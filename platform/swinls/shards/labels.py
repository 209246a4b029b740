"""Masks that arrive apart from their images: `ingest --labels DIR`.

The 2022 Landslide4Sense release shipped `ValidData/img` and `TestData/img` without masks; the
labels came out later as their own archive. A labels source is laid out like the data (one tree,
or a folder of trees named by region) but holds only `<Split>/mask/mask_N.h5` files. Ingest lays
those masks over the source as if they lay beside the images; the region's manifest entry records
where they came from, so a later ingest without `--labels` keeps using them rather than dropping
the labels it already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from swinls import storage
from swinls.errors import SwinLSError
from swinls.patches.layout import DIR_SPLITS, check_region_name


class LabelsError(SwinLSError, ValueError):
    pass


@dataclass(frozen=True)
class RegionLabels:
    tree: str  # URI of the region's label tree
    files: dict[str, str]  # path in the tree (ValidData/mask/mask_1.h5) → listing fingerprint


def _mask_path(rel: str) -> tuple[str, str] | None:
    """(tree prefix, path inside the tree) for a mask file, None for anything else."""
    parts = PurePosixPath(rel).parts
    pos = next((i for i, p in enumerate(parts) if p in DIR_SPLITS), None)
    if pos is None or len(parts) != pos + 3 or parts[pos + 1] != "mask" or parts[-1].startswith("."):
        return None
    return "/".join(parts[:pos]), "/".join(parts[pos:])


def find_labels(uri: str, default_region: str) -> dict[str, RegionLabels]:
    """Region name → its masks in a labels source (one tree, or a folder of trees by region)."""
    uri = str(uri).rstrip("/")
    try:
        listing = storage.list_files(uri)
    except FileNotFoundError as exc:
        raise LabelsError(f"labels {uri}: no such directory or prefix") from exc
    trees: dict[str, dict[str, str]] = {}
    for rel, marker in listing.items():
        found = _mask_path(rel)
        if found is not None:
            trees.setdefault(found[0], {})[found[1]] = marker
    if not trees:
        raise LabelsError(f"labels {uri}: no masks found (expected ValidData/mask/mask_N.h5 or TestData/mask/mask_N.h5, "
                          "in one tree or in one tree per region)")
    if "" in trees and len(trees) > 1:
        raise LabelsError(f"labels {uri}: is a tree and also holds trees below it ({', '.join(sorted(p for p in trees if p))})")
    out = {}
    for prefix, files in trees.items():
        name = check_region_name(default_region if prefix == "" else PurePosixPath(prefix).name)
        out[name] = RegionLabels(storage.join(uri, prefix) if prefix else uri, files)
    return out


def labels_of(uri: str) -> RegionLabels:
    """The masks of one region's label tree, as a manifest recorded it."""
    try:
        listing = storage.list_files(uri)
    except FileNotFoundError as exc:
        raise LabelsError(f"labels {uri}: recorded by the last ingest and now gone; pass --labels with where they are now") from exc
    files = {rel: marker for rel, marker in listing.items() if _mask_path(rel) == ("", rel)}
    return RegionLabels(uri, files)


def overlay(listing: dict[str, str], prefix: str, labels: RegionLabels, src: str) -> tuple[dict[str, str], dict[str, str]]:
    """The source listing with the region's masks laid in, and where each laid-in file really is.

    A mask both in the source and in the labels is an error: which one is right is the user's call.
    """
    combined = dict(listing)
    origin = {}
    for rel, marker in labels.files.items():
        key = f"{prefix}/{rel}" if prefix else rel
        if key in listing:
            raise LabelsError(f"{storage.join(labels.tree, rel)}: the source has this mask too "
                              f"({storage.join(src, key)}); keep one of them")
        combined[key] = marker
        origin[key] = storage.join(labels.tree, rel)
    return combined, origin
