"""URIs to filesystems, and publication that readers never see half-done.

A URI is a local path, `file://…` or `s3://bucket/key`. S3 goes through s3fs with the endpoint
from `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) and credentials only from the standard AWS
chain: nothing here accepts, stores or prints a key, so configs, manifests, logs and pickled
filesystems stay free of them. Transient S3 errors (throttling, 5xx, dropped connections) are
retried with exponential backoff by botocore's retry handler, configured below.

Atomicity: a local file appears by rename of a finished temporary file; an S3 object appears
only when its upload completes. Publication of several files writes them under a new version
prefix and flips a small pointer object last. S3's conditional PUT and DELETE (`If-Match`,
`If-None-Match`) are the primitives of `locks` (leases) and `cas` (compare-and-swap).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping

import fsspec
from fsspec.implementations.local import LocalFileSystem

from swinls.errors import SwinLSError

_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # temporary files are private; finished ones get the usual mode
S3_MAX_ATTEMPTS = 10  # botocore "standard" mode: exponential backoff with jitter, capped at 20 s
POINTER_NAME = "LATEST.json"


class StorageError(SwinLSError, RuntimeError):
    pass


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # S3's rule for bucket names, less the IP-address one
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # a version id or file name a pointer may name


def check_uri(uri: str) -> str:
    """The URI as given, if it is one this platform can use: a local path, `file://…` or
    `s3://bucket[/key]`. Anything else (`s3://` with no bucket, `s3:///key`, `gs://…`) is a
    StorageError naming it, not a local folder called `s3:` or `gs:`."""
    text = str(uri)
    match = _SCHEME.match(text)
    if not text.strip():
        raise StorageError("an empty path or URI was given")
    if match is None:
        return text
    scheme, rest = match.group(1), text[match.end():]
    if scheme in ("s3", "s3a"):
        bucket = rest.split("/", 1)[0]
        if not bucket:
            raise StorageError(f"{text}: no bucket name (expected s3://bucket/prefix)")
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise StorageError(f"{text}: {bucket!r} is not a valid S3 bucket name")
        return text
    if scheme == "file":
        return text
    raise StorageError(f"{text}: unsupported scheme {scheme}:// (local paths, file:// and s3:// are supported)")


def is_s3(uri: str) -> bool:
    return str(uri).startswith(("s3://", "s3a://"))


def is_bucket_root(uri: str) -> bool:
    return is_s3(uri) and "/" not in str(uri).split("://", 1)[1].strip("/")


def s3_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem for a URI and the path within it (no protocol)."""
    uri = check_uri(str(uri))
    if is_s3(uri):
        import s3fs

        fs = s3fs.S3FileSystem(
            endpoint_url=s3_endpoint(),
            use_listings_cache=False,  # other processes write here too; never trust a stale listing
            config_kwargs={"retries": {"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"}},
        )
        return fs, uri.split("://", 1)[1].rstrip("/")
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    return LocalFileSystem(), str(Path(uri).absolute())


def join(uri: str, *parts: str) -> str:
    out = str(uri).rstrip("/")
    for part in parts:
        out = f"{out}/{str(part).strip('/')}"
    return out


def absolute(uri: str) -> str:
    """A local path made absolute (Ray workers run elsewhere than the driver); URIs unchanged."""
    return str(uri) if is_s3(uri) else filesystem(uri)[1]


def to_uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return f"s3://{path}" if not isinstance(fs, LocalFileSystem) else path


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{uri}: no such file or object") from None


def read_json(uri: str) -> Any:
    data = read_bytes(uri)
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise StorageError(f"{uri}: not valid JSON ({exc})") from exc


@contextlib.contextmanager
def _replacing(path: str):
    """A temporary file beside `path` that becomes `path` in one rename, or vanishes on error."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes_atomic(uri: str, data: bytes) -> None:
    """Readers see the old content or the new, never a part of it."""
    fs, path = filesystem(uri)
    if isinstance(fs, LocalFileSystem):
        with _replacing(path) as tmp, open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    else:
        fs.pipe_file(path, data)  # one PUT: S3 never shows a partial object


def write_json_atomic(uri: str, payload: Any) -> None:
    write_bytes_atomic(uri, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def put_file_atomic(local_path: str | Path, uri: str) -> None:
    """Copy a finished local file to a URI so that it appears whole or not at all."""
    fs, path = filesystem(uri)
    if isinstance(fs, LocalFileSystem):
        with _replacing(path) as tmp:
            shutil.copyfile(local_path, tmp)
    else:
        fs.put_file(str(local_path), path)  # a multipart upload is invisible until completed


# -- S3 conditional writes: the primitives of leases and compare-and-swap ------------------------
def precondition_failed(exc: BaseException) -> bool:
    if isinstance(exc, FileExistsError):  # s3fs's name for a failed If-None-Match
        return True
    response = getattr(exc.__cause__, "response", None) or getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code") in ("PreconditionFailed", "412")


def is_conflict(exc: BaseException) -> bool:
    """S3's 409 ConditionalRequestConflict: a concurrent conditional write; try again."""
    response = getattr(exc.__cause__, "response", None) or getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    return code in ("ConditionalRequestConflict", "409") or response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 409


def _bucket_key(uri: str) -> tuple:
    fs, path = filesystem(uri)
    bucket, _, key = path.partition("/")
    return fs, bucket, key


def s3_put(uri: str, data: bytes, **condition) -> str:
    """One PUT, conditional if asked; the new object's ETag."""
    fs, bucket, key = _bucket_key(uri)
    return fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)["ETag"]


def s3_read(uri: str) -> tuple[bytes | None, str | None]:
    """(content, ETag) of one object as one state of it, or (None, None) if there is none: the
    ETag is read before and after the content and must agree."""
    fs, path = filesystem(uri)
    for _ in range(10):
        try:
            before = fs.info(path)["ETag"]
            data = fs.cat_file(path)
            after = fs.info(path)["ETag"]
        except FileNotFoundError:
            return None, None
        if before == after:
            return data, after
    raise StorageError(f"{uri}: kept changing while it was read")


def s3_delete(uri: str, etag: str | None = None) -> bool:
    """Delete the object, only if it is still `etag` when one is given; whether it was deleted."""
    fs, bucket, key = _bucket_key(uri)
    try:
        fs.call_s3("delete_object", Bucket=bucket, Key=key, **({"IfMatch": etag} if etag else {}))
    except (FileNotFoundError, OSError) as exc:
        if isinstance(exc, FileNotFoundError) or precondition_failed(exc):
            return False
        raise
    return True


def remove(uri: str, recursive: bool = False) -> None:
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)


def list_files(uri: str) -> dict[str, str]:
    """Every file under a prefix: relative path → fingerprint, sorted by path.

    The fingerprint changes when the content may have changed: size plus ETag (S3) or
    modification time (local). One listing call, no per-file requests.
    """
    fs, root = filesystem(uri)
    if not fs.exists(root):
        raise FileNotFoundError(f"{uri}: no such directory or prefix")
    found = fs.find(root, detail=True)
    out = {}
    for path, info in sorted(found.items()):
        marker = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
        out[path[len(root):].lstrip("/")] = f"{info.get('size')}:{marker}"
    return out


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def new_version_id() -> str:
    return uuid.uuid4().hex[:16]


def write_version(base_uri: str, files: Mapping[str, str | Path | bytes]) -> tuple[str, dict[str, str]]:
    """Write `files` under a new `<base>/versions/<id>/`; (the id, sha256 per file). No reader
    sees it until a pointer names it."""
    version = new_version_id()
    prefix = join(base_uri, "versions", version)
    digests: dict[str, str] = {}
    for name, content in sorted(files.items()):
        target = join(prefix, name)
        if isinstance(content, bytes):
            digests[name] = hashlib.sha256(content).hexdigest()
            write_bytes_atomic(target, content)
        else:
            digests[name] = sha256_file(content)
            put_file_atomic(content, target)
    return version, digests


def make_pointer(version: str, digests: Mapping[str, str], metadata: Mapping[str, Any] | None = None) -> dict:
    pointer = {"version": version, "prefix": f"versions/{version}", "files": dict(digests)}
    if metadata:
        pointer["metadata"] = dict(metadata)
    return pointer


def publish_version(
    base_uri: str,
    files: Mapping[str, str | Path | bytes],
    *,
    metadata: Mapping[str, Any] | None = None,
    before_pointer: Callable[[], None] | None = None,
) -> str:
    """Write `files` under `<base>/versions/<id>/`, then flip `<base>/LATEST.json` to them.

    Returns the version id. Until the pointer is flipped, readers keep seeing the previous
    version; a crash anywhere before that leaves at most an unreferenced version prefix.
    """
    version, digests = write_version(base_uri, files)
    if before_pointer is not None:
        before_pointer()
    write_json_atomic(join(base_uri, POINTER_NAME), make_pointer(version, digests, metadata))
    return version


def pointer_for(base_uri: str, version: str, metadata: Mapping[str, Any] | None = None) -> dict:
    """The pointer to an existing version, its files' digests computed from what is stored."""
    prefix = join(base_uri, "versions", version)
    try:
        names = list_files(prefix)
    except FileNotFoundError:
        raise FileNotFoundError(f"{prefix}: no such version") from None
    digests = {name: hashlib.sha256(read_bytes(join(prefix, name))).hexdigest() for name in names
               if SAFE_NAME.match(name)}  # not the temporary file a writer killed mid-write left
    return make_pointer(version, digests, metadata)


def check_pointer(pointer: Any, uri: str) -> dict:
    """A version pointer as read from `uri`, refused unless it names a version inside its own
    folder: a pointer is data anyone with write access can change, and `../` in it would make
    readers load a model from elsewhere."""
    if not isinstance(pointer, dict) or not isinstance(pointer.get("version"), str):
        raise StorageError(f"{uri}: not a version pointer (no version)")
    version = pointer["version"]
    if not SAFE_NAME.match(version) or pointer.get("prefix") != f"versions/{version}":
        raise StorageError(f"{uri}: names {pointer.get('prefix')!r}, not a version inside its own folder "
                           f"(versions/<id>); refused")
    if not isinstance(pointer.get("files"), dict) or not all(SAFE_NAME.match(str(n)) for n in pointer["files"]):
        raise StorageError(f"{uri}: its file list names something other than files of the version; refused")
    return pointer


def latest_version(base_uri: str) -> dict:
    """The pointer of the current version, with `uri` set to its prefix."""
    pointer_uri = join(base_uri, POINTER_NAME)
    if not exists(pointer_uri):
        raise FileNotFoundError(f"{pointer_uri}: nothing has been published at {base_uri}")
    pointer = check_pointer(read_json(pointer_uri), pointer_uri)
    pointer["uri"] = join(base_uri, pointer["prefix"])
    return pointer


def read_published(base_uri: str, name: str) -> bytes:
    """A file of the current version, checked against the digest the pointer recorded."""
    pointer = latest_version(base_uri)
    if name not in pointer["files"]:
        raise FileNotFoundError(f"{base_uri}: version {pointer['version']} has no {name!r}")
    data = read_bytes(join(pointer["uri"], name))
    if hashlib.sha256(data).hexdigest() != pointer["files"][name]:
        raise StorageError(f"{join(pointer['uri'], name)}: content does not match its digest")
    return data
