"""Landslide4Sense splits: `img/image_N.h5` in, `mask_N.h5` and `submission.zip` out, and the
official pixel-count metrics when `mask/mask_N.h5` lie beside the images.

N is taken from each image's file name, never from the listing order. Masks are all or none, as
in ingest: a mask folder that lacks one image's mask is an error, not a smaller evaluation.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swinls import storage
from swinls.metrics import IGNORE, Confusion
from swinls.patches import decode_patch, write_h5_mask
from swinls.patches.layout import IMAGE_PREFIX, MASK_PREFIX, PATCH_SUFFIXES
from swinls.prediction.errors import PredictionError
from swinls.prediction.model import PATCH_SIZE, Decision, Normalizer
from swinls.prediction.outputs import StagedFolder

SUBMISSION = "submission.zip"
_IMAGE = re.compile(rf"^{IMAGE_PREFIX}(\d+)({'|'.join(re.escape(s) for s in PATCH_SUFFIXES)})$", re.IGNORECASE)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same masks give the same zip


@dataclass(frozen=True)
class SplitImage:
    number: int
    image: str  # URI
    mask: str | None  # labels beside it

    @property
    def name(self) -> str:
        return f"{IMAGE_PREFIX}{self.number}"

    @property
    def output(self) -> str:
        return f"{MASK_PREFIX}{self.number}.h5"


def split_folders(uri: str) -> tuple[str, str] | None:
    """(img folder, mask folder) when `uri` is a split (a folder holding img/) or its img/ folder."""
    fs, root = storage.filesystem(uri)
    if fs.isdir(f"{root}/img"):
        return storage.to_uri(fs, f"{root}/img"), storage.to_uri(fs, f"{root}/mask")
    if root.rsplit("/", 1)[-1] == "img" and fs.isdir(root):
        parent = root.rsplit("/", 1)[0]
        return storage.to_uri(fs, root), storage.to_uri(fs, f"{parent}/mask")
    return None


def _names(uri: str) -> list[str]:
    fs, root = storage.filesystem(uri)
    if not fs.isdir(root):
        return []
    return sorted(p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False))


def find_images(uri: str) -> list[SplitImage]:
    folders = split_folders(uri)
    if folders is None:
        raise PredictionError(uri, "not a Landslide4Sense split (a folder holding img/image_N.h5)")
    img, mask_folder = folders
    numbers: dict[int, str] = {}
    for name in _names(img):
        if name.startswith("."):
            continue
        match = _IMAGE.match(name)
        if not match:
            raise PredictionError(storage.join(img, name), f"not named {IMAGE_PREFIX}N with a patch suffix "
                                                           f"({', '.join(PATCH_SUFFIXES)}); N names its mask")
        number = int(match.group(1))
        if number in numbers:
            raise PredictionError(storage.join(img, name), f"{numbers[number]} has the same number {number}")
        numbers[number] = name
    if not numbers:
        raise PredictionError(img, "holds no image_N.h5 patches")
    masks = {n for n in _names(mask_folder) if not n.startswith(".")}
    images = []
    for number in sorted(numbers):
        label = next((f"{MASK_PREFIX}{number}{s}" for s in PATCH_SUFFIXES if f"{MASK_PREFIX}{number}{s}" in masks), None)
        if masks and label is None:
            raise PredictionError(storage.join(img, numbers[number]),
                                  f"has no mask in {mask_folder} (expected {MASK_PREFIX}{number}.h5); masks are all or none")
        images.append(SplitImage(number, storage.join(img, numbers[number]),
                                 storage.join(mask_folder, label) if label else None))
    return images


@dataclass
class SplitPatches:
    """Picklable reader: chunk number → normalised patches, their labels and positions."""

    images: list[SplitImage]
    normalizer: Normalizer
    input_indices: tuple[int, ...]
    batch_size: int

    @property
    def chunks(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __call__(self, chunk: int) -> dict[str, np.ndarray]:
        start = chunk * self.batch_size
        raws, truths, nodata = [], [], []
        for item in self.images[start:start + self.batch_size]:
            mask_bytes = storage.read_bytes(item.mask) if item.mask else None
            patch = decode_patch(storage.read_bytes(item.image), item.image, mask_bytes, item.mask)
            if patch.image.shape[:2] != (PATCH_SIZE, PATCH_SIZE):
                raise PredictionError(item.image, f"patch is {patch.image.shape[0]}×{patch.image.shape[1]}, the model "
                                                  f"takes {PATCH_SIZE}×{PATCH_SIZE}; predict larger rasters as scenes (GeoTIFF)")
            missing = patch.nodata if patch.nodata is not None else np.zeros((PATCH_SIZE, PATCH_SIZE), bool)
            truth = patch.mask if patch.mask is not None else np.full((PATCH_SIZE, PATCH_SIZE), IGNORE, np.uint8)
            raws.append(np.moveaxis(patch.image[..., list(self.input_indices)], -1, 0))
            truths.append(np.where(missing, np.uint8(IGNORE), truth))
            nodata.append(missing)
        missing = np.stack(nodata)
        image = np.where(missing[:, None], np.float32(0), self.normalizer(np.stack(raws)))
        index = np.arange(start, start + len(raws), dtype=np.int64)
        return {"image": image, "index": index, "truth": np.stack(truths), "nodata": missing}


class SubmissionWriter:
    """The sink: one mask_N.h5 per image into the staged output, counts per image when labelled."""

    def __init__(self, images: list[SplitImage], decision: Decision, output: StagedFolder) -> None:
        self.images, self.decision, self.output = images, decision, output
        self.labelled = all(item.mask for item in images)
        self.per_image: dict[str, Confusion] = {}
        self.written = 0

    def accept(self, batch: dict[str, np.ndarray], margins: np.ndarray) -> None:
        import torch

        for position, margin, truth, missing in zip(batch["index"], margins, batch["truth"], batch["nodata"]):
            item = self.images[int(position)]
            mask = self.decision(margin)
            mask[missing] = 0  # the submission format is 0/1: no data, no landslide
            write_h5_mask(self.output.path(item.output), mask)
            if self.labelled:
                self.per_image[item.name] = Confusion().add(torch.from_numpy(mask), torch.from_numpy(truth.astype(np.int64)))
            self.written += 1

    def finish(self) -> dict | None:
        """Writes submission.zip; returns the split's metrics when labelled."""
        if self.written != len(self.images):
            raise RuntimeError(f"{self.written} of {len(self.images)} masks were written")
        with zipfile.ZipFile(self.output.path(SUBMISSION), "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for item in self.images:
                info = zipfile.ZipInfo(item.output, date_time=_ZIP_TIME)
                info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
                archive.writestr(info, Path(self.output.path(item.output)).read_bytes())
        if not self.labelled:
            return None
        total = Confusion()
        for counts in self.per_image.values():
            total = total + counts
        return {"images": len(self.images), "pixels": total.pixels, "tp": total.tp, "fp": total.fp, "fn": total.fn,
                "tn": total.tn, **total.scores(),
                "per_image": {name: {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn} for name, c in self.per_image.items()}}
