"""The two front ends of the fake cluster (:mod:`tests.fakes.fake_es`): a real HTTP/1.1
server on 127.0.0.1 and an httpx transport that calls the same code without sockets."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, final

import httpx
import trio

from tests.fakes.es_wire import Hangup, Reply

if TYPE_CHECKING:
    from tests.fakes.fake_es import FakeEs

__all__ = ["FakeEsTransport", "Server"]


@final
class FakeEsTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport answering from a :class:`FakeEs` without sockets.

    A hang-up becomes the exception httpx raises on a real socket: ``ReadError`` for a
    reset, ``RemoteProtocolError`` for a dropped answer.
    """

    def __init__(self, fake: FakeEs) -> None:
        self._fake = fake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer a sync request (latency with :func:`time.sleep`)."""
        body = request.read()
        if self._fake.latency:
            time.sleep(self._fake.latency)
        return self._respond(request, body)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer an async request (latency with :func:`trio.sleep`)."""
        body = await request.aread()
        if self._fake.latency:
            await trio.sleep(self._fake.latency)
        return self._respond(request, body)

    def _respond(self, request: httpx.Request, body: bytes) -> httpx.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        outcome = self._fake._serve(
            request.method, str(request.url.raw_path, "ascii"), headers, body
        )
        if isinstance(outcome, Hangup):
            if outcome.reset:
                raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        headers_out = response_headers(self._fake, outcome, headers)
        self._fake._acknowledge(outcome)
        content = b"" if request.method == "HEAD" else outcome.body
        return httpx.Response(outcome.status, headers=headers_out, content=content, request=request)


class Server(ThreadingHTTPServer):
    """The HTTP front end: a thread per connection, each request served by the fake."""

    daemon_threads = True
    request_queue_size = 128  # a daemon may open many connections at once

    def __init__(self, fake: FakeEs) -> None:
        self.fake = fake
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def drop_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes
    server: Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, alive=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log."""

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self._read_body(headers)
        if fake.latency:
            time.sleep(fake.latency)
        outcome = fake._serve(self.command, self.path, headers, body)
        if isinstance(outcome, Hangup):
            self.close_connection = True
            if outcome.reset:
                # SO_LINGER 0: closing sends RST instead of FIN. The fd really closes when
                # the handler releases rfile/wfile, before the server's shutdown(SHUT_WR).
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            return
        out_headers = response_headers(fake, outcome, headers)
        fake._acknowledge(outcome)
        self.send_response(outcome.status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(outcome.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(outcome.body)

    def _read_body(self, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""


def response_headers(
    fake: FakeEs, reply: Reply, request_headers: Mapping[str, str]
) -> dict[str, str]:
    headers = dict(reply.headers)
    if fake.flavor == "elasticsearch":
        headers["x-elastic-product"] = "Elasticsearch"
        if "vnd.elasticsearch+json" in request_headers.get("accept", "") and reply.body:
            major = fake.version.split(".")[0]
            headers["content-type"] = f"application/vnd.elasticsearch+json;compatible-with={major}"
    return headers
