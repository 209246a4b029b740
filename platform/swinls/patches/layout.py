"""Finding patches in the Landslide4Sense layout, one tree per region.

A tree is `<root>/TrainData/{img,mask}`, `<root>/ValidData/img` (masks optional, all or none) and
`<root>/TestData/img`. The source given to ingest is either one tree (its region named by the
caller, or after the folder) or a folder of trees, one per region. A mask is found by renaming
the image: `image_N.h5` → `mask_N.h5`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from swinls.patches.errors import PatchError

SPLIT_DIRS = {"train": "TrainData", "valid": "ValidData", "test": "TestData"}
DIR_SPLITS = {v: k for k, v in SPLIT_DIRS.items()}
MASKS_REQUIRED = {"train": True, "valid": False, "test": False}
PATCH_SUFFIXES = (".h5", ".tif", ".tiff")
IMAGE_PREFIX, MASK_PREFIX = "image_", "mask_"
_REGION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class PatchSource:
    region: str
    split: str
    patch_id: str  # the image's file stem, e.g. "image_17"
    image: str  # path relative to the ingest source
    mask: str | None


@dataclass
class RegionSources:
    name: str
    prefix: str  # the tree's path relative to the ingest source ("" when the source is the tree)
    patches: list[PatchSource] = field(default_factory=list)
    problems: list[PatchError] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        out = []
        for patch in self.patches:
            out.append(patch.image)
            if patch.mask:
                out.append(patch.mask)
        return out


def natural_key(name: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def check_region_name(name: str) -> str:
    if not _REGION_NAME.match(name):
        raise ValueError(
            f"region name {name!r} must start with a letter or digit and hold only letters, "
            "digits, '.', '_' or '-'"
        )
    return name


def discover(files: list[str], default_region: str) -> list[RegionSources]:
    """Group relative file paths into regions of patches; structural problems are collected."""
    trees: dict[str, dict[tuple[str, str], dict[str, str]]] = {}
    stray: dict[str, list[str]] = {}
    for rel in files:
        parts = PurePosixPath(rel).parts
        split_pos = next((i for i, p in enumerate(parts) if p in DIR_SPLITS), None)
        if split_pos is None or len(parts) != split_pos + 3 or parts[split_pos + 1] not in ("img", "mask"):
            continue  # not part of a patch tree (scenes, notes, …)
        prefix = "/".join(parts[:split_pos])
        split, kind, name = DIR_SPLITS[parts[split_pos]], parts[split_pos + 1], parts[-1]
        if name.startswith("."):
            continue
        if not name.lower().endswith(PATCH_SUFFIXES):
            stray.setdefault(prefix, []).append(rel)
            continue
        trees.setdefault(prefix, {}).setdefault((split, kind), {})[name] = rel

    if "" in trees and len(trees) > 1:
        nested = sorted(p for p in trees if p)
        raise ValueError(
            f"the source is a Landslide4Sense tree and also holds trees below it ({', '.join(nested)}); "
            "point ingest at one or the other"
        )
    regions = []
    for prefix in sorted(trees):
        name = check_region_name(default_region if prefix == "" else PurePosixPath(prefix).name)
        region = RegionSources(name, prefix)
        for rel in stray.get(prefix, []):
            region.problems.append(PatchError(rel, f"not a patch file (expected {', '.join(PATCH_SUFFIXES)})"))
        _pair_images_and_masks(region, trees[prefix])
        regions.append(region)
    names = [r.name for r in regions]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"more than one tree is named {', '.join(duplicated)}; region names must be unique")
    return regions


def _pair_images_and_masks(region: RegionSources, tree: dict[tuple[str, str], dict[str, str]]) -> None:
    for split in SPLIT_DIRS:
        images = tree.get((split, "img"), {})
        masks = tree.get((split, "mask"), {})
        labeled = MASKS_REQUIRED[split] or bool(masks)
        used_masks = set()
        for name in sorted(images, key=natural_key):
            rel = images[name]
            if not name.startswith(IMAGE_PREFIX):
                region.problems.append(PatchError(rel, f"image file names must start with {IMAGE_PREFIX!r}"))
                continue
            mask_name = MASK_PREFIX + name[len(IMAGE_PREFIX):]
            mask_rel = masks.get(mask_name)
            if labeled and mask_rel is None:
                expected = str(PurePosixPath(rel).parent.parent / "mask" / mask_name)
                region.problems.append(PatchError(rel, f"labeled split {SPLIT_DIRS[split]} has no mask for it (expected {expected})"))
                continue
            if mask_rel is not None:
                used_masks.add(mask_name)
            stem = name.rsplit(".", 1)[0]
            region.patches.append(PatchSource(region.name, split, stem, rel, mask_rel if labeled else None))
        for name in sorted(set(masks) - used_masks, key=natural_key):
            image_name = IMAGE_PREFIX + name[len(MASK_PREFIX):] if name.startswith(MASK_PREFIX) else name
            if image_name not in images:
                region.problems.append(PatchError(masks[name], "mask has no image"))
