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
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import msgspec
import trio

from s3lb.model import ObjectRef

__all__ = ["DeadLetter", "entry"]

_encoder = msgspec.json.Encoder()


def entry(
    kind: str, reason: str, ref: ObjectRef, position: int, offset: int | None = None, **data: Any
) -> bytes:
    """One dead-letter line: a record that could not be indexed, with its location."""
    fields = {
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
    return _encoder.encode(fields) + b"\n"


class DeadLetter:
    """Appends dead-letter entries, unbuffered, in a worker thread: the event loop never
    waits on the disk, and an entry is in the file before :meth:`write` returns."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None
        self._path: Path | None = None
        self._day = ""
        self._lock = threading.Lock()  # one writer thread at a time

    async def write(self, lines: Sequence[bytes]) -> None:
        """Keep ``lines`` (from :func:`entry`), all or none.

        Raises:
            OSError: they could not be written (disk full…); none of them was kept.
        """
        if lines:
            await trio.to_thread.run_sync(self.append, lines)

    def append(self, lines: Sequence[bytes]) -> None:
        """:meth:`write`, blocking the calling thread."""
        data = b"".join(lines)
        with self._lock:
            while True:
                fd = self._handle()
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    if self._still_named(fd):
                        _append(fd, data)
                        return
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                self._close()  # claimed by a replay: write to a new file of the same name

    def close(self) -> None:
        """Close the current file. Never raises: nothing is buffered, every entry
        written was written whole or not at all."""
        with self._lock:
            self._close()

    def _handle(self) -> int:
        day = time.strftime("%Y-%m-%d", time.gmtime())
        if self._fd is None or day != self._day:
            self._close()
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.directory / f"dead-letter-{day}.ndjson"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._path = path
            self._day = day
        return self._fd

    def _still_named(self, fd: int) -> bool:
        """True unless a replay renamed the open file away (it holds the lock to do so)."""
        try:
            return os.stat(self._path or "").st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with suppress(OSError):
                os.close(fd)


def _append(fd: int, data: bytes) -> None:
    """Write ``data`` at the end of ``fd`` (its lock held); on a failure, cut the file
    back so that no half entry is left."""
    start = os.fstat(fd).st_size
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        with suppress(OSError):
            os.ftruncate(fd, start)
        raise
