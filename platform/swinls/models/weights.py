"""Pretrained weights from wherever a run can reach them, always ending as one local file.

`model.pretrained` is one of:
    timm                  the default ImageNet weights of the encoder's architecture, by timm
    a timm name           e.g. swin_base_patch4_window7_224.ms_in22k_ft_in1k: fetched once into
                          timm's own cache (the Hugging Face hub cache, HF_HUB_CACHE) when the
                          network allows, read from that cache when it does not
    a local file          .safetensors, .pth or .bin: it must exist on every node
    a URI (s3://…)        downloaded once per node into SWINLS_WEIGHTS_CACHE (default
                          ~/.cache/swinls/weights), checked by size and sha256 — against the
                          `<file>.json` beside it that `jobs/weights.py` writes, when there is one

Every path resolves to a local file and its sha256, which the model card records: the same
weights give the same model whichever way they came. A missing, truncated or unreadable file is
one `WeightsError` naming it, raised by the job's preflight before anything trains.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from swinls.errors import SourceError

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
HUB_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm's hub repositories hold
SIDECAR_SUFFIX = ".json"


def _storage():
    """Imported on use: a model built without pretrained weights needs no fsspec (the GPU
    benchmarks run where it is missing)."""
    from swinls import storage

    return storage


class WeightsError(SourceError):
    """Pretrained weights that cannot be found, fetched or read."""


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path  # a local file timm loads
    source: str  # as the config names it (a timm name with its tag, a path, a URI)
    sha256: str
    bytes: int

    def record(self) -> dict:
        """What a checkpoint and the model card keep."""
        return {"source": self.source, "sha256": self.sha256, "bytes": self.bytes}


def kind_of(value: str) -> str:
    """"uri", "file" or "timm" (a timm name)."""
    if "://" in value:
        return "uri"
    if "/" in value or value.endswith(WEIGHT_SUFFIXES) or Path(value).expanduser().exists():
        return "file"
    return "timm"


def cache_root() -> Path:
    return Path(os.environ.get("SWINLS_WEIGHTS_CACHE") or Path.home() / ".cache" / "swinls" / "weights")


_HASHES: dict[tuple, str] = {}


def _sha256(path: Path) -> str:
    """Hashed once per process per (file, size, mtime): Swin-B's 350 MB takes a second."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = _storage().sha256_file(path)
    return _HASHES[key]


def timm_weights_name(value: str, arch: str) -> str:
    """The timm name the weights are fetched by: `timm` means the architecture's default tag."""
    import timm.models

    name = arch if value == "timm" else value
    if name.split(".", 1)[0] != arch:
        raise WeightsError(f"model.pretrained={value}", f"these are weights for {name.split('.', 1)[0]}, "
                           f"but the model's encoder is {arch}")
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError:  # "Invalid pretrained tag"
        cfg = None
    if cfg is None or not cfg.hf_hub_id:
        raise WeightsError(f"model.pretrained={value}", f"timm has no pretrained weights named {name}")
    return cfg.hf_hub_id.split("/", 1)[1] if "/" in cfg.hf_hub_id else cfg.hf_hub_id


def timm_file(value: str, arch: str) -> tuple[Path, str]:
    """The local file of timm's weights (the hub cache, downloaded there if needed) and their full name."""
    import timm.models
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    name = timm_weights_name(value, arch)
    repo = timm.models.get_pretrained_cfg(name).hf_hub_id
    cache_dir = os.environ.get("HF_HUB_CACHE") or None  # read now, not when huggingface_hub was imported
    failures = []
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    for local_only in (True,) if offline else (True, False):  # the cache first: no wait on the hub
        for filename in HUB_FILES:
            try:
                return Path(hf_hub_download(repo, filename, cache_dir=cache_dir, local_files_only=local_only)), name
            except (LocalEntryNotFoundError, EntryNotFoundError, OSError) as exc:
                failures.append(f"{filename}: {type(exc).__name__}")
    raise WeightsError(f"model.pretrained={value}",
                       f"timm's weights {name} are not in the hub cache and could not be downloaded "
                       f"({failures[-1]}); on a cluster without internet, copy them into a bucket with "
                       f"`python jobs/weights.py {name} s3://BUCKET/weights` and set model.pretrained to the printed URI")


def fetch_uri(uri: str) -> Path:
    """A local copy of the weights at `uri`, downloaded once per node and checked by size and sha256."""
    fs, path = _storage().filesystem(uri)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise WeightsError(uri, "no such weights file") from None
    size = int(info.get("size") or 0)
    expected = _sidecar(uri)
    if expected and expected.get("bytes") not in (None, size):
        raise WeightsError(uri, f"is {size} bytes but {uri}{SIDECAR_SUFFIX} says {expected['bytes']}: an incomplete upload?")
    tag = str(info.get("ETag") or info.get("etag") or info.get("mtime") or "")
    folder = cache_root() / storage_key(uri, size, tag)
    target = folder / Path(path).name
    meta = folder / "weights.json"
    if target.exists() and meta.exists():
        recorded = json.loads(meta.read_text())
        if target.stat().st_size == size and _sha256(target) == recorded.get("sha256"):
            return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".download-", delete=False) as handle:
        temporary = Path(handle.name)
    try:
        fs.get_file(path, str(temporary))
        got = temporary.stat().st_size
        if got != size:
            raise WeightsError(uri, f"downloaded {got} bytes of {size}")
        digest = _storage().sha256_file(temporary)
        if expected and expected.get("sha256") not in (None, digest):
            raise WeightsError(uri, f"sha256 {digest[:12]}… differs from {expected['sha256'][:12]}… in "
                                    f"{uri}{SIDECAR_SUFFIX}: the file is corrupt or was replaced")
        os.replace(temporary, target)  # several workers of one node may race here: each writes a whole file
        _storage().write_bytes_atomic(str(meta), json.dumps({"uri": uri, "sha256": digest, "bytes": size}).encode())
    finally:
        temporary.unlink(missing_ok=True)
    return target


def storage_key(uri: str, size: int, tag: str) -> str:
    import hashlib

    return hashlib.sha256(f"{uri}\n{size}\n{tag}".encode()).hexdigest()[:24]


def _sidecar(uri: str) -> dict | None:
    side = uri + SIDECAR_SUFFIX
    if not _storage().exists(side):
        return None
    try:
        return json.loads(_storage().read_bytes(side))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WeightsError(side, f"is not the JSON jobs/weights.py writes ({exc})") from None


def resolve(value: str, arch: str) -> ResolvedWeights:
    """The weights `model.pretrained` names, as a local file with its hash."""
    kind = kind_of(value)
    source = value
    if kind == "timm":
        path, name = timm_file(value, arch)
        source = f"timm:{name}"
    elif kind == "uri":
        _storage().check_uri(value)
        path = fetch_uri(value)
    else:
        path = Path(value).expanduser()
        if not path.is_file():
            raise WeightsError(value, "no such weights file (model.pretrained takes a timm name, a local file on "
                                      "every node, or an s3:// URI)")
    return ResolvedWeights(path, source, _sha256(path), path.stat().st_size)


def read_state_dict(path: Path, source: str) -> dict:
    """The tensors of a weights file; a truncated or foreign file is a WeightsError naming it."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, pickle and zip errors have no common base
        raise WeightsError(source, f"is not a readable weights file ({type(exc).__name__}: {exc})") from None
    for key in ("state_dict", "model"):  # checkpoints that wrap their weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise WeightsError(source, "holds no tensors")
    return state


def export(name: str, destination: str) -> str:
    """Copy timm's weights `name` (from the hub cache, downloaded there if needed) to
    `destination` (a folder or bucket prefix) with the `.json` a node checks its download by; the
    URI to set as model.pretrained."""
    path, full_name = timm_file(name, name.split(".", 1)[0])
    uri = _storage().join(destination, full_name + path.suffix)
    digest = _storage().sha256_file(path)
    _storage().put_file_atomic(path, uri)
    sidecar = {"source": f"timm:{full_name}", "sha256": digest, "bytes": path.stat().st_size}
    _storage().write_bytes_atomic(uri + SIDECAR_SUFFIX, (json.dumps(sidecar, indent=1) + "\n").encode())
    return uri
