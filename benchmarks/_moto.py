"""A moto S3 server on 127.0.0.1 for benchmarks, in its own process (so it does not share a GIL
with what is measured), exported as AWS_ENDPOINT_URL like a real endpoint."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def moto_s3():
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("moto server did not start")
                time.sleep(0.2)
        from swinls import storage

        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        storage.filesystem(f"s3://{bucket}")[0].mkdir(bucket)
        yield f"s3://{bucket}"
    finally:
        server.terminate()
        server.wait(timeout=10)
