"""The dead-letter store: every record s3lb could not index, kept with its reason.

NDJSON files under ``state_dir/dead-letter/``, one per UTC day
(``dead-letter-YYYY-MM-DD.ndjson``). Each line names the object (bucket, key,
version), the record's position and byte offset, what went wrong (``kind``:
``parse_failed``, ``oversize`` or ``rejected``; ``reason``), and the data: the raw
line (``raw``) or the document that the cluster refused (``document``, ``_index``,
``_id``). Files are created 0600 in a 0700 directory.

``s3lb replay-dead-letter`` claims a file by renaming it while holding its ``flock``;
each write takes the same lock and first checks that its file still has its name,
opening a new one otherwise, so no entry is ever appended to a claimed file.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from s3lb.model import ObjectRef

__all__ = ["DeadLetter"]

_encoder = msgspec.json.Encoder()


class DeadLetter:
    """Appends dead-letter entries; small synchronous writes, flushed per entry."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._day = ""

    def _handle(self) -> BinaryIO:
        day = time.strftime("%Y-%m-%d", time.gmtime())
        if self._file is None or day != self._day:
            self.close()
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.directory / f"dead-letter-{day}.ndjson"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._file = os.fdopen(fd, "ab")
            self._path = path
            self._day = day
        return self._file

    def _still_named(self, handle: BinaryIO) -> bool:
        """True unless a replay renamed the open file away (it holds the lock to do so)."""
        try:
            return os.stat(self._path or "").st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            return False

    def write(
        self,
        kind: str,
        reason: str,
        ref: ObjectRef,
        position: int,
        offset: int | None = None,
        **data: Any,
    ) -> None:
        """Keep one record that could not be indexed."""
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "kind": kind,
            "reason": reason,
            "bucket": ref.bucket,
            "key": ref.key,
            "version": ref.identity,
            "position": position,
            "offset": offset,
            **data,
        }
        line = _encoder.encode(entry) + b"\n"
        while True:
            handle = self._handle()
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if self._still_named(handle):
                    handle.write(line)
                    handle.flush()
                    return
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
            self.close()  # claimed by a replay: write to a new file of the same name

    def close(self) -> None:
        """Close the current file."""
        if self._file is not None:
            self._file.close()
            self._file = None
