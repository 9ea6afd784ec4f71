"""What the benches' asyncio stand-in servers (:mod:`tests.fakes.fast_aws`,
:mod:`tests.fakes.null_sink`) share: HTTP/1.1 request reading and serving on
127.0.0.1 with the URL printed on the first line of stdout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

__all__ = ["Handler", "read_request", "serve"]

#: One connection's handler.
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes] | None:
    """``(method, target, headers, body)`` of the next request on a keep-alive
    connection; None once the client has gone (also mid-request, as at a shutdown).
    Header names are lower case."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    try:
        body = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return method, target, headers, body


async def _serve(handler: Handler) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def serve(handler: Handler) -> None:
    """Serve ``handler`` on 127.0.0.1 and a free port until interrupted; the URL is
    printed first, for the parent process to read."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(handler))
