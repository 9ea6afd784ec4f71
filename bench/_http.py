"""The HTTP/1.1 request reading that the bench's stand-in servers share (asyncio)."""

from __future__ import annotations

import asyncio

__all__ = ["read_request"]


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
