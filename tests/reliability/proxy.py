"""A small TCP fault proxy for the process tier: 127.0.0.1:port → an upstream.

It runs its own trio loop in a daemon thread, so a synchronous test (or a subprocess
daemon pointed at :attr:`FaultProxy.url`) goes through it while the test flips
:attr:`FaultProxy.mode` from its own thread::

    with FaultProxy(("127.0.0.1", es_port)) as proxy:
        proxy.mode = "blackhole"     # connections hang: nothing forwarded either way
        proxy.mode = "reset"         # open and new connections are reset (RST)
        proxy.mode = "latency"       # each chunk waits `latency` seconds
        proxy.mode = "bandwidth"     # at most `bandwidth` bytes per second each way
        proxy.reset_after = 100_000  # the next connection is reset after that many bytes
        proxy.mode = "pass"          # back to normal

``connections`` and ``resets`` count what happened, for the "sometimes" assertions.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from typing import Literal

import trio

__all__ = ["FaultProxy", "Mode"]

Mode = Literal["pass", "latency", "reset", "blackhole", "bandwidth"]


class FaultProxy:
    """Forwards TCP connections to ``upstream`` with switchable faults."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        latency: float = 0.2,
        bandwidth: int = 64 * 1024,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.upstream = upstream
        #: A server-side context: the proxy then terminates TLS (``https://`` in front of
        #: a plain-HTTP fake).
        self.tls = tls
        self.mode: Mode = "pass"
        self.latency = latency
        self.bandwidth = bandwidth
        #: When set, the next accepted connection is reset after this many bytes
        #: from upstream (then the knob clears itself).
        self.reset_after: int | None = None
        self.connections = 0
        self.resets = 0
        self.handshake_failures = 0
        self._port = 0
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0  # bumped by "reset": live connections compare it

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy (``https://`` with ``tls``)."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        """The proxy's port on 127.0.0.1."""
        return self._port

    def __enter__(self) -> FaultProxy:
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None and self._stop is not None:
            self._token.run_sync_soon(self._stop.set)
        if self._thread is not None:
            self._thread.join(5)

    def set_mode(self, mode: Mode) -> None:
        """Switch the fault; ``reset`` also kills every open connection."""
        if mode == "reset":
            self._generation += 1
        self.mode = mode

    async def _main(self) -> None:
        self._stop = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self._port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._handle, listeners)
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    async def _handle(self, raw: trio.SocketStream) -> None:
        self.connections += 1
        generation = self._generation
        budget, self.reset_after = self.reset_after, None
        if self.mode == "reset":
            await self._rst(raw)
            return
        client: trio.abc.Stream = raw
        if self.tls is not None:
            client = trio.SSLStream(raw, self.tls, server_side=True)
            try:
                await client.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.handshake_failures += 1
                await raw.aclose()
                return
        try:
            upstream = await trio.open_tcp_stream(*self.upstream)
        except OSError:
            await self._rst(client)
            return
        async with client, upstream, trio.open_nursery() as nursery:

            async def pump(src: trio.abc.Stream, dst: trio.abc.Stream, limit: int | None) -> None:
                sent = 0
                try:
                    while True:
                        data = await src.receive_some(16384)
                        if not data:
                            break
                        while self.mode == "blackhole":
                            await trio.sleep(0.05)
                        if self.mode == "reset" or generation != self._generation:
                            raise _Reset
                        if limit is not None and sent + len(data) > limit:
                            await dst.send_all(data[: max(0, limit - sent)])
                            raise _Reset
                        if self.mode == "latency":
                            await trio.sleep(self.latency)
                        elif self.mode == "bandwidth":
                            await trio.sleep(len(data) / self.bandwidth)
                        await dst.send_all(data)
                        sent += len(data)
                    if isinstance(dst, trio.SocketStream):
                        await dst.send_eof()
                    else:
                        nursery.cancel_scope.cancel()
                except _Reset:
                    nursery.cancel_scope.cancel()
                    await self._rst(raw)
                    await self._rst(upstream)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    nursery.cancel_scope.cancel()

            nursery.start_soon(pump, client, upstream, None)
            nursery.start_soon(pump, upstream, client, budget)

    async def _rst(self, stream: trio.SocketStream) -> None:
        """Close with RST (SO_LINGER 0) instead of FIN."""
        self.resets += 1
        with contextlib.suppress(OSError):
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with trio.CancelScope(shield=True):
            await stream.aclose()


class _Reset(Exception):
    """Internal: tear the connection down with a reset."""
