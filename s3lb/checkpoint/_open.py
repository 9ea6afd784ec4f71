"""Opening the checkpoint store: create, check, quarantine a corrupt store, or refuse.

An existing store is checked in a child process first (:mod:`.integrity`), because a
damaged page can crash the process that reads it. A store that crashes the checker,
fails to open, or holds undecodable values is *corrupt*: :func:`open_store` moves it to
``state_dir/quarantine-<UTC timestamp>/`` and starts empty, or raises
:class:`~s3lb.errors.CheckpointCorrupt` with ``on_corrupt="raise"``. Errno failures
(permissions, read-only filesystem, a full disk) never cause a quarantine.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import lmdb

from s3lb.checkpoint import integrity
from s3lb.checkpoint._lmdb import (
    CORRUPTION,
    DEFAULT_MAP_SIZE,
    MAX_DBS,
    LmdbStore,
    OnCorrupt,
    Verify,
    store_dir,
)
from s3lb.checkpoint._space import is_no_space, no_space_message, prepare_lock_file
from s3lb.errors import CheckpointCorrupt, CheckpointError

__all__ = ["open_store", "open_store_readonly"]

_log = logging.getLogger("s3lb.checkpoint")

# Signals a damaged page raises in the process that reads it.
CRASH_SIGNALS: Final = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE}
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
            str(path), readonly=True, lock=True, create=False, max_dbs=MAX_DBS, readahead=False
        )
    except CORRUPTION as exc:
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
            max_dbs=MAX_DBS,
            mode=0o600,
            sync=True,
            metasync=True,
            lock=True,
            readahead=False,
        )
    except CORRUPTION as exc:
        raise CheckpointCorrupt(f"checkpoint store {path} is damaged: {exc}", str(path)) from exc
    except lmdb.Error as exc:
        raise CheckpointError(_unusable_message(root, path, exc)) from exc
    try:
        if not existed:
            for name in ("data.mdb", "lock.mdb"):
                os.chmod(path / name, 0o600)  # LMDB's mode is masked by the umask too
        elif integrity.truncated(env, data) is not None:
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


def checker_command(path: Path) -> list[str]:
    """The child process that walks the store (:mod:`s3lb.checkpoint.integrity`)."""
    return [sys.executable, "-I", integrity.__file__, str(path)]


def _check_isolated(path: Path) -> str | None:
    """Walk the store in a child process; the corruption found, or None.

    Anything inconclusive (the child cannot start, is interrupted, cannot open the
    files) returns None: the in-process open reports real errors, and a good store
    must never be quarantined on a guess.
    """
    try:
        proc = subprocess.run(
            checker_command(path),
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        _log.warning("isolated check of %s could not run (%s); checking in-process", path, exc)
        return None
    if proc.returncode == 0:
        return None
    if proc.returncode == integrity.CORRUPT:
        return proc.stdout.strip() or "corrupt"
    if proc.returncode < 0 and -proc.returncode in CRASH_SIGNALS:
        return f"reading it crashed the checker ({signal.Signals(-proc.returncode).name})"
    _log.warning(
        "isolated check of %s was inconclusive (exit %s: %s); checking in-process",
        path,
        proc.returncode,
        (proc.stdout + proc.stderr).strip()[-300:],
    )
    return None
