"""What the benches' asyncio stand-in servers (:mod:`tests.fakes.fast_aws`,
:mod:`tests.fakes.null_sink`) share: HTTP/1.1 request reading and serving on
127.0.0.1 with the URL printed on the first line of stdout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

__all__ = ["Answer", "read_request", "serve"]

#: ``(method, target, headers, body) -> (status, headers, payload)`` for one request.
Answer = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, dict[str, str], bytes]]]


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


async def _connection(
    answer: Answer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer the requests of one keep-alive connection until the client goes."""
    try:
        while True:
            request = await read_request(reader)
            if request is None:
                return
            method = request[0]
            status, headers, payload = await answer(*request)
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n{head}\r\n".encode()
                + (payload if method != "HEAD" else b"")
            )
            await writer.drain()
    finally:
        writer.close()


async def _serve(answer: Answer) -> None:
    server = await asyncio.start_server(
        lambda r, w: _connection(answer, r, w), "127.0.0.1", 0, limit=1 << 20
    )
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def serve(answer: Answer) -> None:
    """Serve ``answer`` over HTTP/1.1 on 127.0.0.1 and a free port until interrupted;
    the URL is printed first, for the parent process to read."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(answer))
