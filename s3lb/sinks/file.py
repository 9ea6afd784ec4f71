"""The file sink: one JSON document per event, NDJSON, to a file or stdout.

Each line is the event's ``_source`` with ``@metadata`` holding its ``_index`` and
``_id`` (as beats' file output does), so the output can be compared or replayed.
Records count as indexed once written and flushed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, BinaryIO

import msgspec
import trio

from s3lb.acks import settle
from s3lb.config import FileOutput
from s3lb.telemetry import Telemetry

if TYPE_CHECKING:
    from s3lb.acks import BulkItem

__all__ = ["FileSink"]

_encoder = msgspec.json.Encoder()


class FileSink:
    """Writes :class:`BulkItem` lists as NDJSON lines."""

    def __init__(self, config: FileOutput, telemetry: Telemetry) -> None:
        self.target = config.target()
        self.telemetry = telemetry

    async def run(self, receive: trio.MemoryReceiveChannel[list[BulkItem]]) -> None:
        """Write until ``receive`` is closed and drained."""
        stdout = self.target == "-"
        handle: BinaryIO = sys.stdout.buffer if stdout else open(self.target, "ab")  # noqa: SIM115
        try:
            async with receive:
                async for items in receive:
                    handle.write(b"".join(_line(item) for item in items))
                    handle.flush()
                    settle(items, "indexed")
                    self.telemetry.count("events_indexed", len(items))
        finally:
            if not stdout:
                handle.close()


def _line(item: BulkItem) -> bytes:
    meta = b'{"@metadata":' + _encoder.encode({"_index": item.index, "_id": item.doc_id})
    body = item.source
    if body == b"{}":
        return meta + b"}\n"
    return meta + b"," + body[1:] + b"\n"
