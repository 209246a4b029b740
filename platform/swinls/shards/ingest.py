"""Ingest: raw Landslide4Sense-layout patches (local or S3) to Parquet shards plus a manifest.

One streaming pass: patches are read a few at a time (a small thread pool hides object-store
latency), validated, written to rolling shards and folded into per-region training moments, so
memory does not grow with the number of patches. Regions already in the destination whose
source is unchanged are kept as they are; new regions add shards; the manifest is replaced last.

With on_bad="fail" the first bad file stops the run and every shard this run uploaded is removed:
nothing is published. With on_bad="skip" bad files are left out and listed, with their reason,
in the manifest.
"""

from __future__ import annotations

from swinls.errors import SwinLSError

import hashlib
import json
import logging
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Iterator

from swinls import storage
from swinls.bands import BANDS
from swinls.moments import BandMoments
from swinls.patches.errors import PatchError
from swinls.patches.layout import PatchSource, RegionSources, discover
from swinls.patches.read import Patch, check_patch_shape, decode_patch
from swinls.shards.labels import LabelsError, RegionLabels, find_labels, labels_of, overlay
from swinls.shards.manifest import Manifest, ManifestError, RegionEntry
from swinls.shards.schema import IGNORE, encode_image, shard_schema
from swinls.shards.writer import BAND_COMPRESSIONS, ShardWriter

log = logging.getLogger(__name__)
ON_BAD = ("fail", "skip")


class IngestError(SwinLSError, RuntimeError):
    """Ingest stopped; nothing was published."""


@dataclass(frozen=True)
class IngestOptions:
    on_bad: str = "fail"
    region: str | None = None  # name for a source that is itself one tree
    labels: str | None = None  # masks that came apart from the images (see shards/labels.py)
    rows_per_shard: int = 256
    # one row group per shard: a stream then reads a shard's chosen bands in one range request
    # each (4 for an RGB model, footer included) instead of one per band per group; object stores
    # charge by request, and Parquet's own advice for them is row groups of ~100 MB
    rows_per_group: int = 256
    image_dtype: str = "float16"
    band_compression: str = "none"  # image planes; ids and masks are always zstd (shards/writer.py)
    read_threads: int = 4

    def __post_init__(self) -> None:
        if self.on_bad not in ON_BAD:
            raise ValueError(f"on_bad must be one of {', '.join(ON_BAD)}, got {self.on_bad!r}")
        if self.rows_per_shard < 1 or self.rows_per_group < 1:
            raise ValueError("rows_per_shard and rows_per_group must be positive")
        if self.band_compression not in BAND_COMPRESSIONS:
            raise ValueError(f"band_compression must be one of {', '.join(BAND_COMPRESSIONS)}, got {self.band_compression!r}")


@dataclass
class IngestReport:
    manifest_uri: str
    manifest_sha256: str
    ingested: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    patches: int = 0
    skipped: list[dict] = field(default_factory=list)
    shards_uploaded: int = 0
    seconds: float = 0.0

    @property
    def patches_per_second(self) -> float:
        return self.patches / self.seconds if self.seconds else 0.0


def _fingerprint(region: RegionSources, listing: dict[str, str]) -> str:
    names = sorted(region.files + [p.source for p in region.problems])
    payload = json.dumps([(n, listing.get(n, "")) for n in names]).encode()
    return hashlib.sha256(payload).hexdigest()


def _read(where, source: PatchSource) -> tuple[PatchSource, Patch | PatchError]:
    """Errors name the file by its full URI."""
    image_uri = where(source.image)
    mask_uri = where(source.mask) if source.mask else None
    try:
        image = storage.read_bytes(image_uri)
        mask = storage.read_bytes(mask_uri) if mask_uri else None
        return source, decode_patch(image, image_uri, mask, mask_uri)
    except PatchError as exc:
        return source, exc
    except FileNotFoundError as exc:
        return source, PatchError(image_uri, f"vanished while reading ({exc})")


def _read_in_order(where, sources: list[PatchSource], threads: int) -> Iterator[tuple[PatchSource, Patch | PatchError]]:
    """Like map(), with at most 2×threads patches in flight: memory stays bounded."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque = deque()
        it = iter(sources)
        for source in it:
            pending.append(pool.submit(_read, where, source))
            if len(pending) >= 2 * threads:
                break
        while pending:
            yield pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(_read, where, nxt))


class _RegionIngest:
    """Streams one region's patches into shards, collecting its statistics."""

    def __init__(self, dst: str, region: RegionSources, options: IngestOptions, shape: tuple[int, int] | None, spool: str,
                 progress=None):
        self.dst, self.region, self.options, self.shape, self.spool = dst, region, options, shape, spool
        self.progress = progress
        self.writers: dict[str, ShardWriter] = {}
        self.moments = BandMoments(BANDS)
        self.skipped: list[dict] = []
        self.patches = 0

    @property
    def created(self) -> list[str]:
        return [uri for w in self.writers.values() for uri in w.created]

    def _writer(self, split: str) -> ShardWriter:
        if split not in self.writers:
            assert self.shape is not None
            schema = shard_schema(BANDS, self.shape, self.options.image_dtype)
            self.writers[split] = ShardWriter(self.dst, self.region.name, split, schema,
                                              self.options.rows_per_shard, self.options.rows_per_group, self.spool,
                                              self.options.band_compression)
        return self.writers[split]

    def bad(self, error: PatchError) -> None:
        if self.options.on_bad == "fail":
            raise error
        log.warning("skipping %s", error)
        self.skipped.append({"source": error.source, "reason": error.reason})

    def run(self, src_tree: str, origin: dict[str, str]) -> None:
        """origin: where the files laid in from a labels source really are (path in the tree → URI)."""
        def where(rel: str) -> str:
            return origin.get(rel) or storage.join(src_tree, rel)

        for problem in self.region.problems:
            self.bad(PatchError(where(problem.source), problem.reason))
        for source, result in _read_in_order(where, self.region.patches, self.options.read_threads):
            if self.progress is not None:
                self.progress.add()
            if isinstance(result, PatchError):
                self.bad(result)
                continue
            image_uri = where(source.image)
            try:
                check_patch_shape(result, self.shape, image_uri)
                planes = encode_image(result.image, self.options.image_dtype, image_uri)
            except PatchError as exc:
                self.bad(exc)
                continue
            self.shape = self.shape or tuple(result.image.shape[:2])
            mask = result.mask
            valid = None if result.nodata is None else ~result.nodata
            if mask is not None and valid is not None:
                mask = mask.copy()
                mask[~valid] = IGNORE
            if source.split == "train" and mask is not None:
                self.moments.update(result.image if valid is None else result.image[valid])
            positives = None if mask is None else int((mask == 1).sum())
            meta = {"id": source.patch_id, "region": self.region.name, "split": source.split,
                    "source": source.image, "labeled": mask is not None,
                    "has_landslide": None if mask is None else positives > 0, "positive_pixels": positives}
            self._writer(source.split).add(meta, planes, mask)
            self.patches += 1

    def finish(self, src_tree: str, files: int, fingerprint: str, labels: str | None) -> RegionEntry:
        shards = []
        for split in ("train", "valid", "test"):
            if split in self.writers:
                shards.extend(self.writers[split].close())
        return RegionEntry(name=self.region.name, source=src_tree, source_files=files, source_fingerprint=fingerprint,
                           labels=labels, shards=shards, skipped=self.skipped,
                           train_moments=self.moments.to_dict() if self.moments.count else None)

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


def ingest(src: str, dst: str, options: IngestOptions = IngestOptions(), progress=None) -> IngestReport:
    """Ingest `src` into the shard dataset `dst`. `progress` (swinls.progress.Progress) counts
    the patches as they are written."""
    started = time.perf_counter()
    src = str(src).rstrip("/")
    listing = storage.list_files(src)
    default_region = options.region or PurePosixPath(src.split("://")[-1]).name
    regions = discover(list(listing), default_region)
    if not regions:
        raise IngestError(f"{src}: no Landslide4Sense tree found (expected TrainData/, ValidData/ or TestData/ folders)")
    existing = Manifest.load_if_exists(dst)
    if existing is not None and (existing.bands != BANDS or existing.image_dtype != options.image_dtype):
        raise ManifestError(f"{Manifest.uri(dst)}: holds {existing.image_dtype} shards of bands {existing.bands}; "
                            f"cannot add {options.image_dtype} shards of {BANDS}")
    labels = _region_labels(src, options, regions, existing, default_region)
    origin: dict[str, str] = {}
    for region in regions:
        if region.name in labels:
            listing, laid_in = overlay(listing, region.prefix, labels[region.name], src)
            origin.update(laid_in)
    if labels:
        regions = discover(list(listing), default_region)
    manifest = existing or Manifest(bands=BANDS, patch_shape=(0, 0), image_dtype=options.image_dtype)
    shape = tuple(manifest.patch_shape) if existing else None
    report = IngestReport(manifest_uri=Manifest.uri(dst), manifest_sha256="")
    created: list[str] = []
    new_entries: dict[str, RegionEntry] = {}
    if progress is not None:
        progress.total = sum(len(region.patches) for region in regions)
    with tempfile.TemporaryDirectory(prefix="swinls-ingest-") as spool:
        try:
            for region in regions:
                tree = storage.join(src, region.prefix) if region.prefix else src
                relative = {f[len(region.prefix):].lstrip("/"): v for f, v in listing.items() if f.startswith(region.prefix)}
                fingerprint = _fingerprint(_relative(region), relative)
                region_labels = labels.get(region.name)
                labels_tree = region_labels.tree if region_labels else None
                old = manifest.regions.get(region.name)
                if (old is not None and old.source == tree and old.labels == labels_tree
                        and old.source_fingerprint == fingerprint):
                    report.unchanged.append(region.name)
                    if progress is not None:
                        progress.drop(len(region.patches))
                    continue
                work = _RegionIngest(dst, _relative(region), options, shape, spool, progress)
                try:
                    work.run(tree, _within(origin, region.prefix))
                    entry = work.finish(tree, len(region.files), fingerprint, labels_tree)
                finally:
                    created.extend(work.created)
                    work.abort()
                shape = shape or work.shape
                new_entries[region.name] = entry
                report.ingested.append(region.name)
                report.patches += work.patches
                report.skipped.extend(dict(s, region=region.name) for s in work.skipped)
        except BaseException as exc:
            _remove(created)
            if isinstance(exc, PatchError):
                raise IngestError(f"ingest stopped at a bad file, nothing was published: {exc}") from exc
            raise
    if new_entries:
        if shape is None:
            _remove(created)
            raise IngestError(f"{src}: every patch was skipped as bad; nothing was published")
        manifest.patch_shape = shape
        manifest.regions.update(new_entries)
        try:
            report.manifest_sha256 = manifest.save(dst)
        except BaseException:
            _remove(created)
            raise
    else:
        report.manifest_sha256 = manifest.content_hash()
    report.shards_uploaded = len(created)
    report.seconds = time.perf_counter() - started
    return report


def _region_labels(src: str, options: IngestOptions, regions: list[RegionSources], existing: Manifest | None,
                   default_region: str) -> dict[str, RegionLabels]:
    """Each region's separately shipped masks: from --labels, else as the last ingest recorded them."""
    names = {r.name for r in regions}
    out = {}
    for name in sorted(names):
        old = existing.regions.get(name) if existing is not None else None
        if old is not None and old.labels:
            out[name] = labels_of(old.labels)
    if options.labels:
        given = find_labels(options.labels, default_region)
        unknown = sorted(set(given) - names)
        if unknown:
            raise LabelsError(f"labels {options.labels}: holds masks for {', '.join(unknown)}, which {src} does not "
                              f"hold (its regions: {', '.join(sorted(names))})")
        out.update(given)
    return out


def _within(origin: dict[str, str], prefix: str) -> dict[str, str]:
    """The part of an origin map under one tree, keyed by path inside that tree."""
    if not prefix:
        return dict(origin)
    cut = len(prefix) + 1
    return {key[cut:]: uri for key, uri in origin.items() if key.startswith(prefix + "/")}


def _relative(region: RegionSources) -> RegionSources:
    """The region with paths relative to its own tree."""
    if not region.prefix:
        return region
    cut = len(region.prefix) + 1

    def rel(p: str | None) -> str | None:
        return p[cut:] if p else p

    patches = [PatchSource(p.region, p.split, p.patch_id, rel(p.image), rel(p.mask)) for p in region.patches]
    problems = [PatchError(rel(e.source), e.reason) for e in region.problems]
    return RegionSources(region.name, "", patches, problems)


def _remove(uris: list[str]) -> None:
    for uri in uris:
        try:
            storage.remove(uri)
        except OSError as exc:  # leave it: an unreferenced shard is harmless, never published
            log.warning("could not remove %s after a failed ingest: %s", uri, exc)
