"""The checkpoint store on LMDB, schema v1. Synchronous; async code goes through ``_store``.

Layout under ``state_dir/checkpoint/`` (a 0700 directory; ``data.mdb`` and ``lock.mdb``
are 0600), three named databases:

- ``objects``: ``bucket\\0key\\0version`` (UTF-8; a ``\\xff``-prefixed BLAKE2b digest
  when that is longer than LMDB's 511-byte key limit or a part holds a NUL) →
  msgpack :class:`ObjectState`.
- ``imports``: import job id (same key rule) → msgpack :class:`ImportCursor`.
- ``meta``: ``schema`` → ``b"1"``; ``map_size`` → the writer's map size, for ``s3lb state``.

The environment is opened with ``sync=True, metasync=True``: a commit returns after
``fsync``, so a kill -9 right after it loses nothing. One :meth:`LmdbStore.commit` is one
write transaction. A commit never moves an object backwards (see :func:`merge_states`).

At open, an existing store is checked in a child process first (walking every page),
because LMDB has no checksums and a damaged page can crash the reading process
(SIGSEGV/SIGBUS, or an LMDB assertion): a store that crashes the checker, fails to
open, or holds undecodable values is *corrupt*. :func:`open_store` then moves it to
``state_dir/quarantine-<UTC timestamp>/`` and starts empty, or raises
:class:`~s3lb.errors.CheckpointCorrupt` with ``on_corrupt="raise"``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Literal, final

import lmdb
import msgspec

from s3lb.checkpoint import integrity
from s3lb.checkpoint._space import FileGuard, is_no_space, no_space_message
from s3lb.checkpoint.records import (
    ImportCursor,
    ObjectState,
    RecordCounts,
    Status,
    StoreUsage,
    db_key,
    decode_cursor,
    decode_prunable,
    decode_state,
    encode,
    merge_states,
    object_key,
)
from s3lb.crashpoints import crash_point
from s3lb.errors import CheckpointCorrupt, CheckpointError, CheckpointFull

__all__ = [
    "CORRUPTION",
    "DEFAULT_MAP_SIZE",
    "MAX_DBS",
    "SCHEMA_VERSION",
    "ImportCursor",
    "LmdbStore",
    "ObjectState",
    "OnCorrupt",
    "RecordCounts",
    "Status",
    "StoreUsage",
    "Verify",
    "merge_states",
    "object_key",
    "store_dir",
]

_log = logging.getLogger("s3lb.checkpoint")

OnCorrupt = Literal["quarantine", "raise"]
#: ``isolated``: page walk in a child process, then a decode check in-process (the
#: default); ``inline``: both in-process (a damaged page may crash us); ``off``.
Verify = Literal["isolated", "inline", "off"]

DEFAULT_MAP_SIZE: Final = 1 << 30
SCHEMA_VERSION: Final = 1
STORE_DIRNAME: Final = "checkpoint"
PRUNE_BATCH: Final = 10_000

MAX_DBS = 4
_DB_OBJECTS = b"objects"
_DB_IMPORTS = b"imports"
_DB_META = b"meta"
_USAGE_WARN = 0.8

#: What :mod:`.integrity` counts as damage, and values that do not decode.
CORRUPTION: Final = (*integrity.CORRUPTION, msgspec.DecodeError)  # DecodeError: ValidationError too


def store_dir(state_dir: str | os.PathLike[str]) -> Path:
    """The LMDB environment directory under ``state_dir``."""
    return Path(state_dir) / STORE_DIRNAME


@final
class LmdbStore:
    """The checkpoint store, synchronous. Open with :func:`open_store` (read-write, one
    per process) or :func:`open_store_readonly` (``s3lb state``; never blocks the writer).

    Methods may be called from any thread; each runs in its own transaction.
    """

    def __init__(self, env: lmdb.Environment, path: Path, *, readonly: bool) -> None:
        self._env = env
        self._path = path
        self._readonly = readonly
        self._closed = False
        self._warned_full = False
        #: Where a corrupt predecessor was moved at open, if it was.
        self.quarantined: Path | None = None
        self._guard = FileGuard(env, path, path.parent)
        try:
            with self._errors("open"):
                if not readonly:
                    self._guard.allocate_lock()
                self._objects = env.open_db(_DB_OBJECTS, create=not readonly)
                self._imports = env.open_db(_DB_IMPORTS, create=not readonly)
                self._meta = env.open_db(_DB_META, create=not readonly)
                self._psize: int = env.stat()["psize"]
                if not readonly:
                    self._init_meta(env.info()["map_size"])
                else:
                    self._check_schema()
        except BaseException:
            self._guard.close()
            raise

    @property
    def path(self) -> Path:
        """The environment directory."""
        return self._path

    @property
    def readonly(self) -> bool:
        """True for a reader opened with :func:`open_store_readonly`."""
        return self._readonly

    def get(self, bucket: str, key: str, version: str) -> ObjectState | None:
        """The stored state of an object version, or None if it is unknown (or pruned)."""
        with self._errors("read"), self._env.begin(db=self._objects) as txn:
            raw = txn.get(object_key(bucket, key, version))
            return None if raw is None else decode_state(raw)

    def commit(
        self,
        states: Iterable[ObjectState] = (),
        cursors: Iterable[ImportCursor] = (),
        *,
        now: float | None = None,
    ) -> None:
        """Write object states and import cursors in one durable transaction.

        Each state is merged over the stored one (:func:`merge_states`); ``updated`` is
        stamped with ``now`` (default: the current time).

        Raises:
            CheckpointFull: the map is full; nothing of this commit was written.
            CheckpointCorrupt: LMDB reported a damaged page.
            CheckpointError: any other LMDB or OS failure (disk full, I/O error).
        """
        self._writable()
        stamp = time.time() if now is None else now
        with self._errors("commit"), self._env.begin(write=True) as txn:
            for state in states:
                k = object_key(state.bucket, state.key, state.version)
                raw = txn.get(k, db=self._objects)
                old = None if raw is None else decode_state(raw)
                txn.put(k, encode(merge_states(old, state, stamp)), db=self._objects)
                crash_point("mid_lmdb_txn")  # a kill inside the transaction: none of it lands
            for cursor in cursors:
                updated = msgspec.structs.replace(cursor, updated=stamp)
                txn.put(db_key(cursor.job), encode(updated), db=self._imports)
        self._check_usage()

    def put_cursor(self, cursor: ImportCursor, *, now: float | None = None) -> None:
        """Store an import cursor (a :meth:`commit` with only that cursor)."""
        self.commit((), (cursor,), now=now)

    def get_cursor(self, job: str) -> ImportCursor | None:
        """The cursor of import job ``job``, or None before its first commit."""
        with self._errors("read"), self._env.begin(db=self._imports) as txn:
            raw = txn.get(db_key(job))
            return None if raw is None else decode_cursor(raw)

    def objects(self) -> list[ObjectState]:
        """Every stored object state, in key order (bucket, key, version)."""
        with self._errors("read"), self._env.begin(db=self._objects) as txn:
            return [decode_state(raw) for raw in txn.cursor().iternext(keys=False)]

    def cursors(self) -> list[ImportCursor]:
        """Every stored import cursor."""
        with self._errors("read"), self._env.begin(db=self._imports) as txn:
            return [decode_cursor(raw) for raw in txn.cursor().iternext(keys=False)]

    def prune(self, older_than: float, statuses: Collection[Status] = ("done", "failed")) -> int:
        """Forget objects in ``statuses`` last updated before ``older_than`` (epoch s).

        Deletes in transactions of at most :data:`PRUNE_BATCH` objects. Returns how
        many were deleted.
        """
        total, start = 0, b""
        while True:
            deleted, resume = self.prune_batch(older_than, statuses, start=start)
            total += deleted
            if resume is None:
                return total
            start = resume

    def prune_batch(
        self,
        older_than: float,
        statuses: Collection[Status] = ("done", "failed"),
        *,
        start: bytes = b"",
        limit: int = PRUNE_BATCH,
    ) -> tuple[int, bytes | None]:
        """One transaction of :meth:`prune`: at most ``limit`` deletions, keys >= ``start``.

        Returns:
            ``(deleted, resume)``: pass ``resume`` as ``start`` to continue; it is None
            when the scan reached the end.
        """
        self._writable()
        deleted = 0
        with self._errors("prune"), self._env.begin(write=True, db=self._objects) as txn:
            cur = txn.cursor()
            found = cur.set_range(start) if start else cur.first()
            while found:
                view = decode_prunable(cur.value())
                if view.status not in statuses or view.updated >= older_than:
                    found = cur.next()
                elif deleted == limit:
                    return deleted, bytes(cur.key())
                else:
                    deleted += 1
                    # delete() moves to the next item; past the last one the cursor
                    # is unpositioned and its key empty (LMDB keys never are).
                    found = cur.delete() and bool(cur.key())
        self._env.reader_check()  # a killed `s3lb state` must not pin old pages forever
        return deleted, None

    def forget(self, states: Iterable[ObjectState]) -> int:
        """Delete the given objects' checkpoints in one transaction; returns how many."""
        self._writable()
        deleted = 0
        with self._errors("forget"), self._env.begin(write=True, db=self._objects) as txn:
            for state in states:
                deleted += bool(txn.delete(object_key(state.bucket, state.key, state.version)))
        return deleted

    def usage(self) -> StoreUsage:
        """The map size, the bytes in use and the entry counts."""
        with self._errors("read"), self._env.begin() as txn:
            raw = txn.get(b"map_size", db=self._meta)
            info = self._env.info()
            return StoreUsage(
                path=str(self._path),
                map_size=int(raw) if raw else info["map_size"],
                used_bytes=(info["last_pgno"] + 1) * self._psize,
                objects=txn.stat(self._objects)["entries"],
                imports=txn.stat(self._imports)["entries"],
            )

    def verify(self) -> int:
        """Decode every stored value; returns how many were checked.

        Raises:
            CheckpointCorrupt: a value does not decode (or LMDB reports damage).
        """
        checked = 0
        with self._errors("verify"), self._env.begin() as txn:
            for raw in txn.cursor(db=self._objects).iternext(keys=False):
                decode_state(raw)
                checked += 1
            for raw in txn.cursor(db=self._imports).iternext(keys=False):
                decode_cursor(raw)
                checked += 1
        return checked

    def close(self) -> None:
        """Close the environment (idempotent). No call may be running in another thread."""
        if not self._closed:
            self._closed = True
            self._env.close()
            self._guard.close()

    def _init_meta(self, map_size: int) -> None:
        with self._env.begin(write=True, db=self._meta) as txn:
            if txn.get(b"schema") is None:
                if txn.stat(self._objects)["entries"] or txn.stat(self._imports)["entries"]:
                    raise CheckpointCorrupt(
                        f"checkpoint store {self._path} has data but no schema version",
                        str(self._path),
                    )
                txn.put(b"schema", str(SCHEMA_VERSION).encode())
            txn.put(b"map_size", str(map_size).encode())
        self._check_schema()

    def _check_schema(self) -> None:
        with self._env.begin(db=self._meta) as txn:
            raw = txn.get(b"schema")
        try:
            schema = int(raw) if raw is not None else SCHEMA_VERSION
        except ValueError:
            raise CheckpointCorrupt(
                f"checkpoint store {self._path} has a bad schema version {raw!r}",
                str(self._path),
            ) from None
        if schema > SCHEMA_VERSION:
            # Not corrupt: a newer s3lb wrote it and may still need it. Never quarantine.
            raise CheckpointError(
                f"checkpoint store {self._path} has schema v{schema}, newer than this s3lb "
                f"(v{SCHEMA_VERSION}): run the newer s3lb, or point state_dir elsewhere"
            )

    def _writable(self) -> None:
        if self._readonly:
            raise CheckpointError(f"checkpoint store {self._path} is open read-only")

    def _check_usage(self) -> None:
        info = self._env.info()
        fill = (info["last_pgno"] + 1) * self._psize / info["map_size"]
        if fill >= _USAGE_WARN and not self._warned_full:
            self._warned_full = True
            _log.warning(
                "checkpoint store %s is %.0f%% full (map_size %d bytes): raise "
                "checkpoint.map_size or prune sooner before it fills up",
                self._path,
                fill * 100,
                info["map_size"],
            )
        elif fill < _USAGE_WARN - 0.1:
            self._warned_full = False

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        self._guard.check()  # a file truncated under us: an error, not a SIGBUS
        try:
            yield
        except lmdb.MapFullError as exc:
            raise CheckpointFull(_full_message(self._path, self._env), str(self._path)) from exc
        except CORRUPTION as exc:
            raise CheckpointCorrupt(
                f"checkpoint store {self._path} is damaged ({doing}: {exc}); "
                "restart s3lb to move it aside and start afresh",
                str(self._path),
            ) from exc
        except lmdb.Error as exc:
            if is_no_space(exc, self._path.parent):
                raise CheckpointError(no_space_message(self._path.parent)) from exc
            raise CheckpointError(f"checkpoint store {self._path}: {doing} failed: {exc}") from exc


def _full_message(path: Path, env: lmdb.Environment) -> str:
    return (
        f"checkpoint store {path} is full (map_size {env.info()['map_size']} bytes); "
        "nothing of this commit was written. Recovery: raise checkpoint.map_size in the "
        "config (the file only grows as used) and restart; `s3lb state` shows the usage; "
        "a shorter done_retention prunes finished objects sooner."
    )
