import json
import os
import pickle

import pytest

from swinls import storage
from tests.conftest import FAKE_KEY_ID, FAKE_SECRET
from tests.flaky_proxy import FlakyProxy


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "store")
    return request.getfixturevalue("bucket") + "/store"


def test_atomic_writes_read_back_and_replace_whole(root):
    uri = storage.join(root, "a", "b.json")
    storage.write_json_atomic(uri, {"v": 1})
    storage.write_json_atomic(uri, {"v": 2})
    assert storage.read_json(uri) == {"v": 2}
    assert list(storage.list_files(root)) == ["a/b.json"]  # no temporary leftovers


def test_file_uri_and_plain_paths_are_the_same_place(tmp_path):
    storage.write_bytes_atomic(f"file://{tmp_path}/x.bin", b"abc")
    assert storage.read_bytes(str(tmp_path / "x.bin")) == b"abc"
    assert oct(os.stat(tmp_path / "x.bin").st_mode & 0o777) == oct(storage.FILE_MODE)


def test_missing_objects_are_named_in_the_error(root):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        storage.read_bytes(storage.join(root, "nothing.json"))


def test_publish_flips_the_pointer_last_and_keeps_old_versions(root, tmp_path):
    base = storage.join(root, "best")
    first = storage.publish_version(base, {"model.bin": b"one", "card.json": b"{}"})
    assert storage.read_published(base, "model.bin") == b"one"

    def crash():
        raise RuntimeError("killed between upload and pointer")

    with pytest.raises(RuntimeError):
        storage.publish_version(base, {"model.bin": b"two", "card.json": b"{}"}, before_pointer=crash)
    assert storage.latest_version(base)["version"] == first
    assert storage.read_published(base, "model.bin") == b"one"

    local = tmp_path / "weights.bin"
    local.write_bytes(b"three")
    third = storage.publish_version(base, {"model.bin": local})
    assert third != first and storage.read_published(base, "model.bin") == b"three"
    assert storage.read_bytes(storage.join(base, "versions", first, "model.bin")) == b"one"


def test_a_published_file_that_does_not_match_its_digest_is_refused(root):
    base = storage.join(root, "best")
    version = storage.publish_version(base, {"model.bin": b"good"})
    storage.write_bytes_atomic(storage.join(base, "versions", version, "model.bin"), b"tampered")
    with pytest.raises(storage.StorageError, match="does not match its digest"):
        storage.read_published(base, "model.bin")


def test_transient_s3_errors_are_retried_with_backoff(bucket, s3_endpoint, monkeypatch, tmp_path):
    with FlakyProxy(s3_endpoint, fail_every=2) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        uri = f"{bucket}/flaky/obj.bin"
        storage.write_bytes_atomic(uri, b"x" * 1000)
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(3 << 20))
        storage.put_file_atomic(big, f"{bucket}/flaky/big.bin")
        assert storage.read_bytes(uri) == b"x" * 1000
        assert storage.read_bytes(f"{bucket}/flaky/big.bin") == big.read_bytes()
        assert sorted(storage.list_files(f"{bucket}/flaky")) == ["big.bin", "obj.bin"]
    assert proxy.failures >= 3, "the proxy should really have refused requests"


def test_credentials_never_travel_with_filesystems_or_written_files(bucket):
    fs, _ = storage.filesystem(bucket)
    pickled = pickle.dumps(fs)
    assert FAKE_SECRET.encode() not in pickled and FAKE_KEY_ID.encode() not in pickled
    storage.publish_version(f"{bucket}/best", {"x": b"1"}, metadata={"note": "m"})
    for rel in storage.list_files(bucket):
        content = storage.read_bytes(storage.join(bucket, rel))
        assert FAKE_SECRET.encode() not in content and FAKE_KEY_ID.encode() not in content
    assert json.dumps(storage.latest_version(f"{bucket}/best")).find(FAKE_SECRET) == -1
