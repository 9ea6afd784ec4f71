"""What the checkpoint store keeps, and how it is keyed and encoded. Pure: no LMDB here.

- :class:`ObjectState`: the checkpoint of one object version (watermark, counts, status);
- :class:`ImportCursor`: the progress of one ``s3lb import`` job;
- :func:`merge_states`: the rule that keeps a commit from moving an object backwards;
- :func:`object_key`: the database key of an object version (hashed when too long).
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

__all__ = [
    "ImportCursor",
    "ObjectState",
    "RecordCounts",
    "Status",
    "StoreUsage",
    "db_key",
    "decode_cursor",
    "decode_prunable",
    "decode_state",
    "encode",
    "merge_states",
    "object_key",
]

Status = Literal["in_progress", "done", "failed"]

_MAX_KEY = 511  # LMDB's compiled-in MDB_MAXKEYSIZE
_HASHED = b"\xff"  # never starts a UTF-8 string, so hashed keys cannot collide with plain ones


class RecordCounts(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """How the records acknowledged so far settled."""

    indexed: int = 0
    duplicate: int = 0
    rejected: int = 0
    parse_failed: int = 0


class ObjectState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The checkpoint of one object version.

    ``acked`` is the highest contiguous acknowledged position (records ``1..acked`` are
    settled); ``offset`` is the byte offset just past it when the object is not
    compressed (a resume Range-GETs from there), else ``-1``. ``total`` is the number
    of records once the reader reached the end, else ``-1``. ``started`` and
    ``updated`` (epoch seconds) are stamped by the store.
    """

    bucket: str
    key: str
    version: str
    status: Status = "in_progress"
    acked: int = 0
    offset: int = 0
    total: int = -1
    records: RecordCounts = RecordCounts()
    error: str = ""
    started: float = 0.0
    updated: float = 0.0
    #: Positions acknowledged beyond the first gap, as inclusive ``[first, last]``
    #: ranges: a resume skips them, so only what was truly in flight is sent again.
    beyond: list[tuple[int, int]] = []


class ImportCursor(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Progress of one ``s3lb import`` job: the last key handed out, and counts."""

    job: str
    last_key: str = ""
    done: int = 0
    failed: int = 0
    complete: bool = False
    updated: float = 0.0


class StoreUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Size figures of a store; ``used_bytes`` is the file's high-water mark."""

    path: str
    map_size: int
    used_bytes: int
    objects: int
    imports: int


class Prunable(msgspec.Struct):
    """The two fields pruning reads of a stored state."""

    # Just the fields prune looks at: msgspec skips decoding the rest. Defaults must
    # match ObjectState's, since omit_defaults leaves default values out of the bytes.
    status: str = "in_progress"
    updated: float = 0.0


encode = msgspec.msgpack.Encoder().encode
decode_state = msgspec.msgpack.Decoder(ObjectState).decode
decode_cursor = msgspec.msgpack.Decoder(ImportCursor).decode
decode_prunable = msgspec.msgpack.Decoder(Prunable).decode


def db_key(*parts: str) -> bytes:
    """The key of ``parts`` joined by NULs, or a BLAKE2b digest when that is too long."""
    if not any("\0" in part for part in parts):
        raw = "\0".join(parts).encode("utf-8", "surrogatepass")
        if len(raw) <= _MAX_KEY:
            return raw
    digest = hashlib.blake2b(digest_size=32)
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return _HASHED + digest.digest()


def object_key(bucket: str, key: str, version: str) -> bytes:
    """The LMDB key of an object version (``version``: version id, else ETag)."""
    return db_key(bucket, key, version)


def merge_states(old: ObjectState | None, new: ObjectState, now: float) -> ObjectState:
    """What a commit of ``new`` over the stored ``old`` writes: commits never regress.

    - ``done`` is final (until pruned): a late or duplicate writer cannot reopen it.
    - ``acked`` never decreases: a stale watermark (two tasks on the same object, a
      commit racing a newer one) keeps the stored prefix, offset and counts.
    - ``started`` keeps the first value; ``updated`` becomes ``now`` (never earlier
      than the stored one, should the clock step back).
    """
    if old is None:
        return msgspec.structs.replace(new, started=new.started or now, updated=now)
    if old.status == "done":
        return old
    merged = new
    if new.acked < old.acked:
        merged = msgspec.structs.replace(
            new, acked=old.acked, offset=old.offset, records=old.records, beyond=old.beyond
        )
    return msgspec.structs.replace(
        merged, started=old.started or new.started or now, updated=max(now, old.updated)
    )
