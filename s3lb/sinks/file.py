"""The file sink: one JSON document per event, NDJSON, to a file or stdout.

Each line is the event's ``_source`` with ``@metadata`` holding its ``_index`` and
``_id`` (as beats' file output does), so the output can be compared or replayed.
Records count as indexed once written and flushed. The file's directory is created
when missing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import msgspec
import trio

from s3lb.acks import settle
from s3lb.config import FileOutput
from s3lb.errors import ConfigError
from s3lb.telemetry import Telemetry

if TYPE_CHECKING:
    from s3lb.acks import BulkItem

__all__ = ["FileSink", "open_target"]

_encoder = msgspec.json.Encoder()


class FileSink:
    """Writes :class:`BulkItem` lists as NDJSON lines."""

    def __init__(self, config: FileOutput, telemetry: Telemetry) -> None:
        self.target = config.target()
        self.telemetry = telemetry

    async def run(self, receive: trio.MemoryReceiveChannel[list[BulkItem]]) -> None:
        """Write until ``receive`` is closed and drained."""
        stdout = self.target == "-"
        handle = sys.stdout.buffer if stdout else open_target(self.target)
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


def open_target(target: str, where: str = "output.file.path") -> BinaryIO:
    """Open ``target`` to append to it, creating its directory if missing.

    Raises:
        ConfigError: naming ``where``, when it cannot be created or opened.
    """
    if target.endswith("/"):  # Path() would drop the slash and create a file
        raise ConfigError(f"{target} names a directory: name a file (or set filename)", where)
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "ab")
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}", where) from None


def _line(item: BulkItem) -> bytes:
    meta = b'{"@metadata":' + _encoder.encode({"_index": item.index, "_id": item.doc_id})
    body = item.source
    if body == b"{}":
        return meta + b"}\n"
    return meta + b"," + body[1:] + b"\n"
