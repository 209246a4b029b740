"""Small real datasets for tests: random but valid Landslide4Sense trees, written with h5py."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from swinls import storage
from swinls.bands import BANDS
from swinls.patches import write_h5_image, write_h5_mask
from swinls.patches.layout import SPLIT_DIRS


def random_patch(rng: np.random.Generator, size: int = 32, positive: bool = True) -> tuple[np.ndarray, np.ndarray]:
    image = rng.normal(0.0, 1.0, (size, size, 14)).astype(np.float32)
    mask = np.zeros((size, size), dtype=np.uint8)
    if positive:
        r, c = rng.integers(0, size - 4, 2)
        mask[r:r + 4, c:c + 4] = 1
        image[mask == 1, 3] += 2.0  # landslides brighten red
    return image, mask


def write_tree(root: str | Path, counts=(6, 2, 2), size: int = 32, seed: int = 0, dtype: str = "float32") -> dict:
    """A Landslide4Sense tree with `counts` = (train, valid, test) patches; returns the arrays."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for split, n in zip(("train", "valid", "test"), counts):
        folder = root / SPLIT_DIRS[split]
        (folder / "img").mkdir(parents=True, exist_ok=True)
        if split != "test":
            (folder / "mask").mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            image, mask = random_patch(rng, size, positive=i % 2 == 1)
            write_h5_image(folder / "img" / f"image_{i}.h5", image, dtype)
            if split != "test":
                write_h5_mask(folder / "mask" / f"mask_{i}.h5", mask)
            written[(split, f"image_{i}")] = (image, mask if split != "test" else None)
    return written


def upload_tree(local: str | Path, uri: str) -> None:
    local = Path(local)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            storage.put_file_atomic(path, storage.join(uri, path.relative_to(local).as_posix()))


def publish_model(root: str, *, bands: str = "RGB", seed: int = 0, pca=None, history: list[dict] | None = None,
                  calibrate_on: np.ndarray | None = None) -> str:
    """A nano SwinLS published through the real path (a run checkpoint, then `publish_best`);
    returns the `best/` URI. Untrained, but with `calibrate_on` (raw N×H×W×14 patches) the
    landslide bias is set so that about half of those pixels are predicted landslide, so masks
    are neither all 0 nor all 1."""
    import torch

    from swinls.bands import OFFICIAL_STATS, channel_stats, resolve_band_set
    from swinls.checkpoints import RunStore
    from swinls.config import to_dict
    from swinls.experiment_config import load_experiment
    from swinls.models import build_model
    from swinls.prediction.model import Normalizer, Predictor
    from swinls.published import publish_best

    config = load_experiment(None, ["model.size=nano", "model.decoder_channels=[16, 16, 8, 8, 8]",
                                    "model.drop_path=0.0", f"data.bands={bands}"])
    band_set = resolve_band_set(bands)
    mean, std = channel_stats(band_set, OFFICIAL_STATS, pca)
    normalization = {"band_set": band_set.name, "inputs": list(band_set.inputs), "channels": list(band_set.channels),
                     "mean": [float(v) for v in mean], "std": [float(v) for v in std], "source": "official",
                     "pca": pca.to_dict() if pca is not None else None, "manifest_sha256": None}
    torch.manual_seed(seed)
    model = build_model(config.model, band_set.channels).eval()
    if calibrate_on is not None:
        normalizer = Normalizer.from_record(normalization, "helper")
        raw = np.moveaxis(calibrate_on[..., [BANDS.index(b) for b in band_set.inputs]], -1, 1)
        margins = Predictor(model).margins(normalizer(raw))
        with torch.no_grad():
            model.decoder.head.bias[1] -= float(np.median(margins))
    history = history or [{"phase": "stage1", "phase_epoch": 1, "epoch": 1, "valid_f1": 0.5}]
    state = {"model": model.state_dict(), "config": to_dict(config), "normalization": normalization,
             "channels": list(band_set.channels), "history": history}
    checkpoint = RunStore(storage.join(root, "run")).save(state, phase=history[-1]["phase"], epoch=1, phase_done=True,
                                                          history=history)
    best = storage.join(root, "best")
    publish_best(best, checkpoint, experiment="helper", trial="t0",
                 objective={"metric": "valid_f1", "scope": "last", "mode": "max", "value": 0.5})
    return best


def move_labels_apart(tree: str | Path, labels: str | Path, seed: int = 0) -> dict:
    """Make a tree look like the 2022 release: ValidData without masks, their masks (and new
    TestData masks) in a separate labels tree, as the later label archive ships them. Returns
    the masks by (split, patch id)."""
    tree, labels = Path(tree), Path(labels)
    rng = np.random.default_rng(seed)
    moved = {}
    for split in ("valid", "test"):
        images = sorted((tree / SPLIT_DIRS[split] / "img").glob("image_*.h5"))
        if not images:
            continue
        out = labels / SPLIT_DIRS[split] / "mask"
        out.mkdir(parents=True, exist_ok=True)
        for image in images:
            name = "mask_" + image.name[len("image_"):]
            beside = tree / SPLIT_DIRS[split] / "mask" / name
            if beside.exists():
                beside.rename(out / name)
            else:
                write_h5_mask(out / name, random_patch(rng, _h5_size(image), positive=True)[1])
            moved[(split, image.stem)] = out / name
        shutil.rmtree(tree / SPLIT_DIRS[split] / "mask", ignore_errors=True)
    return moved


def _h5_size(path: Path) -> int:
    import h5py

    from swinls.patches.h5 import IMAGE_KEY

    with h5py.File(path, "r") as handle:
        return int(handle[IMAGE_KEY].shape[0])
