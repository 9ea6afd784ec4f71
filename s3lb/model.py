"""Immutable value types shared across layers (no I/O here)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ObjectRef", "content_id", "document_id"]


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One S3 object version, as named by a notification or a listing.

    ``etag`` is stored without quotes. ``version_id`` is set for versioned buckets.
    """

    bucket: str
    key: str
    etag: str = ""
    version_id: str = ""
    size: int | None = None
    event_time: str = ""

    @property
    def identity(self) -> str:
        """The version part of the object identity: version id, else ETag."""
        return self.version_id or self.etag

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def document_id(ref: ObjectRef, position: int) -> str:
    """Stable ``_id`` of the record at ``position`` (1-based ordinal) in ``ref``.

    Re-reading the same object version yields the same ids; two identical lines at
    different positions stay two documents.
    """
    return document_ids(ref)(position)


def document_ids(ref: ObjectRef) -> Callable[[int], str]:
    """:func:`document_id` for many positions of one object: the object's part of the
    hash is computed once."""
    base = hashlib.blake2b(
        f"{ref.bucket}\x00{ref.key}\x00{ref.identity}\x00".encode(), digest_size=16
    )

    def make(position: int) -> str:
        digest = base.copy()
        digest.update(str(position).encode())
        return digest.hexdigest()

    return make


def content_id(raw_line: bytes) -> str:
    """``_id`` from the content of a line, as s3logsbeat made it (``document_id: content``).

    The lowercase hex SHA-1 of the raw line exactly as read, including its trailing
    ``\n`` (and ``\r``) when it had one. Two identical lines get the same id, so one of
    them is counted as a duplicate: the reason ``position`` is the default.
    """
    return hashlib.sha1(raw_line, usedforsecurity=False).hexdigest()
