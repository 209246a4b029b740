"""A real HTTP proxy in front of the S3 endpoint that misbehaves the way networks and S3 do.

Nothing is mocked: the client really gets the error responses, or really loses a response. A
`rule(request)` decides per request: forward it (None), answer an S3 error instead (`Answer`), or
forward it and drop the reply (`DROP`: the write lands, the client sees a dropped connection and
retries). `FlakyProxy(endpoint, fail_every=3)` answers every third request with 503 SlowDown.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

DROP = "drop"


@dataclass(frozen=True)
class Request:
    number: int  # 1-based, over all requests the proxy saw
    method: str
    path: str
    headers: dict


@dataclass(frozen=True)
class Answer:
    status: int
    code: str
    message: str = "injected by the test proxy"

    def body(self) -> bytes:
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{self.code}</Code>'
                f"<Message>{self.message}</Message></Error>").encode()


SLOW_DOWN = Answer(503, "SlowDown", "Please reduce your request rate.")


def every(n: int, answer: Answer = SLOW_DOWN):
    return lambda request: answer if request.number % n == 0 else None


def first_matching(predicate, action, times: int = 1):
    """`action` for the first `times` requests that match, then forward everything."""
    left = [times]

    def rule(request: Request):
        if left[0] > 0 and predicate(request):
            left[0] -= 1
            return action
        return None

    return rule


def conditional_put(request: Request) -> bool:
    return request.method == "PUT" and any(k.lower() in ("if-match", "if-none-match") for k in request.headers)


class FlakyProxy:
    def __init__(self, upstream: str, fail_every: int = 3, rule=None) -> None:
        self.upstream = urlparse(upstream)
        self.rule = rule or every(fail_every)
        self.requests = 0
        self.failures = 0
        self.dropped = 0
        self.seen: list[Request] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", ""):
                    raw = b""
                    while True:
                        line = self.rfile.readline()
                        raw += line
                        size = int(line.split(b";")[0].strip(), 16)
                        if size == 0:
                            while True:
                                trailer = self.rfile.readline()
                                raw += trailer
                                if trailer in (b"\r\n", b"\n", b""):
                                    return raw
                        raw += self.rfile.read(size + 2)
                return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

            def _forward(self, body: bytes):
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for key, value in self.headers.items():
                    conn.putheader(key, value)
                conn.endheaders()
                if body:
                    conn.send(body)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                return response, data

            def _handle(self):
                body = self._body()
                with proxy._lock:
                    proxy.requests += 1
                    request = Request(proxy.requests, self.command, self.path, dict(self.headers.items()))
                    proxy.seen.append(request)
                    action = proxy.rule(request)
                    proxy.failures += isinstance(action, Answer)
                    proxy.dropped += action == DROP
                if isinstance(action, Answer):
                    error = action.body()
                    self.send_response(action.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(error)
                    return
                response, data = self._forward(body)
                if action == DROP:  # the request took effect; its reply never arrives
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FlakyProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
