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

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Literal, final

import lmdb
import msgspec

from s3lb.checkpoint._space import FileGuard, is_no_space, no_space_message, prepare_lock_file
from s3lb.crashpoints import crash_point
from s3lb.errors import CheckpointCorrupt, CheckpointError, CheckpointFull

__all__ = [
    "DEFAULT_MAP_SIZE",
    "SCHEMA_VERSION",
    "ImportCursor",
    "LmdbStore",
    "ObjectState",
    "RecordCounts",
    "Status",
    "StoreUsage",
    "merge_states",
    "object_key",
    "open_store",
    "open_store_readonly",
    "store_dir",
]

_log = logging.getLogger("s3lb.checkpoint")

Status = Literal["in_progress", "done", "failed"]
OnCorrupt = Literal["quarantine", "raise"]
#: ``isolated``: page walk in a child process, then a decode check in-process (the
#: default); ``inline``: both in-process (a damaged page may crash us); ``off``.
Verify = Literal["isolated", "inline", "off"]

DEFAULT_MAP_SIZE: Final = 1 << 30
SCHEMA_VERSION: Final = 1
STORE_DIRNAME: Final = "checkpoint"
PRUNE_BATCH: Final = 10_000

_MAX_DBS = 4
_MAX_KEY = 511  # LMDB's compiled-in MDB_MAXKEYSIZE
_HASHED = b"\xff"  # never starts a UTF-8 string, so hashed keys cannot collide with plain ones
_DB_OBJECTS = b"objects"
_DB_IMPORTS = b"imports"
_DB_META = b"meta"
_USAGE_WARN = 0.8

# LMDB failures that mean the bytes on disk are wrong, as opposed to errno failures
# (permissions, read-only filesystem, disk full) that must never cause a quarantine.
_CORRUPTION: Final = (
    lmdb.CorruptedError,
    lmdb.InvalidError,
    lmdb.PageNotFoundError,
    lmdb.PanicError,
    lmdb.VersionMismatchError,
    lmdb.IncompatibleError,
    lmdb.BadDbiError,
    msgspec.DecodeError,  # includes msgspec.ValidationError
)
# Signals a damaged page raises in the process that reads it.
_CRASH_SIGNALS: Final = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE}
)
_CHECK_CORRUPT = 3  # exit status of the isolated check when the store is damaged


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


class _Prunable(msgspec.Struct):
    # Just the fields prune looks at: msgspec skips decoding the rest. Defaults must
    # match ObjectState's, since omit_defaults leaves default values out of the bytes.
    status: str = "in_progress"
    updated: float = 0.0


_encode = msgspec.msgpack.Encoder().encode
_decode_state = msgspec.msgpack.Decoder(ObjectState).decode
_decode_cursor = msgspec.msgpack.Decoder(ImportCursor).decode
_decode_prunable = msgspec.msgpack.Decoder(_Prunable).decode


def _db_key(*parts: str) -> bytes:
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
    return _db_key(bucket, key, version)


def store_dir(state_dir: str | os.PathLike[str]) -> Path:
    """The LMDB environment directory under ``state_dir``."""
    return Path(state_dir) / STORE_DIRNAME


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
            return None if raw is None else _decode_state(raw)

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
                old = None if raw is None else _decode_state(raw)
                txn.put(k, _encode(merge_states(old, state, stamp)), db=self._objects)
                crash_point("mid_lmdb_txn")  # a kill inside the transaction: none of it lands
            for cursor in cursors:
                updated = msgspec.structs.replace(cursor, updated=stamp)
                txn.put(_db_key(cursor.job), _encode(updated), db=self._imports)
        self._check_usage()

    def put_cursor(self, cursor: ImportCursor, *, now: float | None = None) -> None:
        """Store an import cursor (a :meth:`commit` with only that cursor)."""
        self.commit((), (cursor,), now=now)

    def get_cursor(self, job: str) -> ImportCursor | None:
        """The cursor of import job ``job``, or None before its first commit."""
        with self._errors("read"), self._env.begin(db=self._imports) as txn:
            raw = txn.get(_db_key(job))
            return None if raw is None else _decode_cursor(raw)

    def objects(self) -> list[ObjectState]:
        """Every stored object state, in key order (bucket, key, version)."""
        with self._errors("read"), self._env.begin(db=self._objects) as txn:
            return [_decode_state(raw) for raw in txn.cursor().iternext(keys=False)]

    def cursors(self) -> list[ImportCursor]:
        """Every stored import cursor."""
        with self._errors("read"), self._env.begin(db=self._imports) as txn:
            return [_decode_cursor(raw) for raw in txn.cursor().iternext(keys=False)]

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
                view = _decode_prunable(cur.value())
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
                _decode_state(raw)
                checked += 1
            for raw in txn.cursor(db=self._imports).iternext(keys=False):
                _decode_cursor(raw)
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
        except _CORRUPTION as exc:
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


def _unusable_message(state_dir: Path, what: Path, exc: BaseException) -> str:
    if is_no_space(exc, state_dir):
        return no_space_message(state_dir)
    return (
        f"cannot use the checkpoint store at {what}: {exc}. s3lb needs a writable state "
        f"directory: create {state_dir} if needed and make it and {what} writable by the "
        "user running s3lb (for example chown -R that user and chmod 0700), or set "
        "state_dir to a writable path."
    )


def open_store(
    state_dir: str | os.PathLike[str],
    *,
    map_size: int = DEFAULT_MAP_SIZE,
    on_corrupt: OnCorrupt = "quarantine",
    verify: Verify = "isolated",
) -> LmdbStore:
    """Open (or create) the read-write checkpoint store under ``state_dir``.

    Args:
        state_dir: created 0700 if missing; the store lives in ``state_dir/checkpoint/``.
        map_size: the most bytes the store may grow to (a sparse reservation).
        on_corrupt: ``"quarantine"`` moves a corrupt store to
            ``state_dir/quarantine-<timestamp>/``, logs an error and starts empty
            (:attr:`LmdbStore.quarantined` says where it went); ``"raise"`` raises.
        verify: how an existing store is checked before use (see :data:`Verify`).

    Raises:
        CheckpointCorrupt: the store is corrupt and ``on_corrupt="raise"``, or moving
            it aside failed.
        CheckpointError: the directory is not writable, or the store was written by a
            newer schema.
    """
    root = Path(state_dir)
    path = store_dir(root)
    _make_dirs(root, path)
    try:
        return _open_writable(root, path, map_size, verify)
    except CheckpointCorrupt as exc:
        if on_corrupt == "raise":
            raise
        moved = _quarantine(root, path, exc)
        _make_dirs(root, path)
        store = _open_writable(root, path, map_size, "off")
        store.quarantined = moved
        return store


def open_store_readonly(state_dir: str | os.PathLike[str]) -> LmdbStore | None:
    """Open the store for reading alongside a running daemon; None if there is none yet.

    LMDB readers take no lock the writer waits on. Must not be called in a process
    that has the same store open read-write (LMDB forbids two opens per process).

    Raises:
        CheckpointCorrupt: the store cannot be read (the daemon quarantines it at its
            next start).
        CheckpointError: the store exists but cannot be opened (permissions).
    """
    path = store_dir(state_dir)
    data = path / "data.mdb"
    try:
        if not data.exists() or data.stat().st_size == 0:
            return None
    except OSError as exc:
        raise CheckpointError(
            f"cannot read the checkpoint store at {path}: {exc} (run this command as "
            "the user that runs the daemon)"
        ) from exc
    try:
        env = lmdb.open(
            str(path), readonly=True, lock=True, create=False, max_dbs=_MAX_DBS, readahead=False
        )
    except _CORRUPTION as exc:
        raise CheckpointCorrupt(
            f"checkpoint store {path} is damaged ({exc}); the daemon moves it aside at "
            "its next start",
            str(path),
        ) from exc
    except lmdb.Error as exc:
        raise CheckpointError(
            f"cannot read the checkpoint store at {path}: {exc} (run this command as "
            "the user that runs the daemon)"
        ) from exc
    try:
        return LmdbStore(env, path, readonly=True)
    except CheckpointError as exc:
        env.close()
        if isinstance(exc.__cause__, lmdb.NotFoundError):
            return None  # created, but the daemon has not committed its first transaction
        raise
    except BaseException:
        env.close()
        raise


def _make_dirs(root: Path, path: Path) -> None:
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.is_dir():
            path.mkdir(mode=0o700)
            os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
    except OSError as exc:
        raise CheckpointError(_unusable_message(root, path, exc)) from exc


def _open_writable(root: Path, path: Path, map_size: int, verify: Verify) -> LmdbStore:
    data = path / "data.mdb"
    try:
        existed = data.exists() and data.stat().st_size > 0
    except OSError as exc:
        raise CheckpointError(_unusable_message(root, path, exc)) from exc
    # Before anything maps the lock file (the isolated check too: a SIGBUS there would
    # pass a good store for a corrupt one).
    prepare_lock_file(root, path)
    if existed and verify == "isolated":
        reason = _check_isolated(path)
        if reason is not None:
            raise CheckpointCorrupt(f"checkpoint store {path} is damaged: {reason}", str(path))
    try:
        env = lmdb.open(
            str(path),
            map_size=map_size,
            max_dbs=_MAX_DBS,
            mode=0o600,
            sync=True,
            metasync=True,
            lock=True,
            readahead=False,
        )
    except _CORRUPTION as exc:
        raise CheckpointCorrupt(f"checkpoint store {path} is damaged: {exc}", str(path)) from exc
    except lmdb.Error as exc:
        raise CheckpointError(_unusable_message(root, path, exc)) from exc
    try:
        if not existed:
            for name in ("data.mdb", "lock.mdb"):
                os.chmod(path / name, 0o600)  # LMDB's mode is masked by the umask too
        elif _truncated(env, data):
            raise CheckpointCorrupt(f"checkpoint store {path} is truncated", str(path))
        store = LmdbStore(env, path, readonly=False)
        if existed and verify != "off":
            store.verify()
        env.reader_check()  # clear reader slots of dead processes
        return store
    except OSError as exc:
        env.close()
        raise CheckpointError(_unusable_message(root, path, exc)) from exc
    except BaseException:
        env.close()
        raise


def _truncated(env: lmdb.Environment, data: Path) -> bool:
    # Reading a page past the end of the file is a SIGBUS, not an error: check first.
    need = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    return data.stat().st_size < need


def _quarantine(root: Path, path: Path, exc: CheckpointCorrupt) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = root / f"quarantine-{stamp}"
    n = 1
    while dest.exists():
        dest = root / f"quarantine-{stamp}-{n}"
        n += 1
    try:
        os.rename(path, dest)
        (dest / "REASON").write_text(f"{exc}\n")
    except OSError as err:
        raise CheckpointCorrupt(
            f"{exc}; moving it aside to {dest} failed: {err}", str(path)
        ) from err
    _log.error(
        "checkpoint store %s is corrupt (%s): moved it to %s and starting with an empty "
        "store; objects are re-sent from their start and the cluster absorbs the "
        "duplicates (409)",
        path,
        exc,
        dest,
    )
    return dest


# Runs in `python -I -c` (no s3lb import, so it works wherever lmdb is importable).
# Walks every database, copying every key and value so that every page is read.
_WALK = r"""
import os, sys
import lmdb
corrupt = (lmdb.CorruptedError, lmdb.InvalidError, lmdb.PageNotFoundError, lmdb.PanicError,
           lmdb.VersionMismatchError, lmdb.IncompatibleError, lmdb.BadDbiError)
path = sys.argv[1]
try:
    env = lmdb.open(path, readonly=True, lock=True, create=False, max_dbs=8, readahead=False)
    need = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    size = os.path.getsize(os.path.join(path, "data.mdb"))
    if size < need:
        print(f"truncated: {size} bytes, {need} in use")
        sys.exit(3)
    with env.begin() as txn:
        names = [k for k, _ in txn.cursor()]
    for name in names:
        db = env.open_db(name, create=False)
        with env.begin(db=db) as txn:
            for _ in txn.cursor():
                pass
except corrupt as exc:
    print(f"{type(exc).__name__}: {exc}")
    sys.exit(3)
except lmdb.Error as exc:
    print(exc)
    sys.exit(4)
"""


def _check_isolated(path: Path) -> str | None:
    """Walk the store in a child process; the corruption found, or None.

    Anything inconclusive (the child cannot start, is interrupted, cannot open the
    files) returns None: the in-process open reports real errors, and a good store
    must never be quarantined on a guess.
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _WALK, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        _log.warning("isolated check of %s could not run (%s); checking in-process", path, exc)
        return None
    if proc.returncode == 0:
        return None
    if proc.returncode == _CHECK_CORRUPT:
        return proc.stdout.strip() or "corrupt"
    if proc.returncode < 0 and -proc.returncode in _CRASH_SIGNALS:
        return f"reading it crashed the checker ({signal.Signals(-proc.returncode).name})"
    _log.warning(
        "isolated check of %s was inconclusive (exit %s: %s); checking in-process",
        path,
        proc.returncode,
        (proc.stdout + proc.stderr).strip()[-300:],
    )
    return None
