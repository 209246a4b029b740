"""A moto S3 server on 127.0.0.1 for benchmarks, exported as AWS_ENDPOINT_URL like a real one."""

from __future__ import annotations

import contextlib
import os
import uuid


@contextlib.contextmanager
def moto_s3():
    from moto.server import ThreadedMotoServer

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    from swinls import storage

    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    storage.filesystem(f"s3://{bucket}")[0].mkdir(bucket)
    try:
        yield f"s3://{bucket}"
    finally:
        server.stop()
