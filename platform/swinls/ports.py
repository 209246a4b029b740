"""A free TCP port on 127.0.0.1, for the local servers the platform starts (an MLflow server, a
local Ray's dashboard). Free when asked: another process may take it before it is bound."""

from __future__ import annotations

import socket


def free_port(preferred: int = 0) -> int:
    """`preferred` where it is free (a service's usual port, which users look for), else any."""
    for port in ((preferred, 0) if preferred else (0,)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError("no free TCP port on 127.0.0.1")
