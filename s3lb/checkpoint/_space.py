"""Disk space for the checkpoint store, and a guard against its file shrinking.

LMDB memory-maps both of its files. ``lock.mdb`` is a sparse file that LMDB writes
through the map, and every page of ``data.mdb`` is read through the map: a page the
filesystem cannot back (a full disk, or a file truncated under us) is a ``SIGBUS``,
which kills the process without a word. So:

- before LMDB opens the store, the lock file's blocks are allocated with
  ``posix_fallocate`` (a full disk is then an ``ENOSPC`` error at a point we control);
- once open, whatever LMDB added to the lock file is allocated too. The data file
  needs no such care: LMDB writes its pages with ``pwrite`` (no ``MDB_WRITEMAP``), so
  a full disk fails a commit with ``ENOSPC``, which ``_lmdb`` reports with the same
  message (at open: s3lb exits 1; later: the daemon goes on without checkpoints);
- before every transaction, :class:`FileGuard` compares the data file's size with
  the pages in use: a file truncated under a running process is an error, not a
  read past its end.

Every failure is a :class:`~s3lb.errors.CheckpointError` whose one-line message
names the state directory, the bytes free and the bytes needed.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Final, NamedTuple, final

import lmdb

from s3lb.errors import CheckpointCorrupt, CheckpointError

__all__ = [
    "LOCK_BYTES",
    "NEW_STORE_BYTES",
    "FileGuard",
    "SpaceNeeded",
    "free_bytes",
    "is_no_space",
    "no_space_message",
    "prepare_lock_file",
    "space_needed",
]

#: Size LMDB gives ``lock.mdb`` with py-lmdb's default 126 reader slots (it grows the
#: file itself if its build needs more; :meth:`FileGuard.allocate_lock` fills the rest).
LOCK_BYTES: Final = 8192
#: What a new store writes at open: two meta pages and the pages of its three
#: databases (with room to spare), at LMDB's usual 4 KiB page size.
NEW_STORE_BYTES: Final = 16 * 4096
_NO_SPACE: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
_NO_FALLOCATE: Final = frozenset({errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS})


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged user may still allocate on the filesystem of ``path`` (or
    of its nearest existing parent)."""
    target = Path(path).absolute()
    while not target.exists() and target != target.parent:
        target = target.parent
    st = os.statvfs(target)
    return st.f_bavail * st.f_frsize


def _allocated(path: Path) -> tuple[int, int]:
    """(size, bytes allocated) of a file; (0, 0) when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return 0, 0
    return st.st_size, st.st_blocks * 512


class SpaceNeeded(NamedTuple):
    """What the store under a state directory still needs, and what is free."""

    #: Bytes the store must still allocate to open and commit.
    needed: int
    #: Bytes free on the state directory's filesystem.
    free: int


def space_needed(state_dir: str | os.PathLike[str]) -> SpaceNeeded:
    """What opening the store under ``state_dir`` will allocate, and what is free:
    the lock file's blocks not yet allocated, and a new store's first pages."""
    store = Path(state_dir) / "checkpoint"
    lock_size, lock_held = _allocated(store / "lock.mdb")
    data_size, _ = _allocated(store / "data.mdb")
    needed = max(max(LOCK_BYTES, lock_size) - lock_held, 0)
    if data_size == 0:
        needed += NEW_STORE_BYTES
    return SpaceNeeded(needed, free_bytes(state_dir))


def is_no_space(exc: BaseException, state_dir: Path | None = None) -> bool:
    """True for ``ENOSPC``/``EDQUOT``, as an OSError or as LMDB's errno error.

    LMDB reports a short write (the disk filled in the middle of one) as ``EIO``:
    with ``state_dir``, that counts too when its filesystem has less than
    :data:`NEW_STORE_BYTES` free.
    """
    if isinstance(exc, OSError):
        return exc.errno in _NO_SPACE
    if not isinstance(exc, lmdb.Error):
        return False
    text = str(exc)
    if any(os.strerror(code) in text for code in _NO_SPACE):
        return True
    if state_dir is None or os.strerror(errno.EIO) not in text:
        return False
    try:
        return free_bytes(state_dir) < NEW_STORE_BYTES
    except OSError:
        return False


def no_space_message(state_dir: Path, needed: int | None = None) -> str:
    """The one line saying the state directory's filesystem is too full."""
    try:
        free = f"{free_bytes(state_dir)} bytes free"
    except OSError:
        free = "free space unknown"
    more = "" if needed is None else f", {needed} more needed"
    return (
        f"no space left for the checkpoint store in {state_dir}: {free} on its "
        f"filesystem{more}; free some space or set state_dir on a filesystem with room, "
        "then start s3lb again"
    )


def _fallocate(path: Path, size: int, state_dir: Path) -> None:
    """Allocate the first ``size`` bytes of ``path`` (created 0600 if missing); never
    shrinks it. ENOSPC becomes a CheckpointError saying so."""
    held_size, held = _allocated(path)
    if held >= size:
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise CheckpointError(no_space_message(state_dir, size - held)) from exc
        if exc.errno not in _NO_FALLOCATE:
            raise
        # No fallocate here (some network filesystems): compare with the free space.
        if free_bytes(path) < size - held:
            raise CheckpointError(no_space_message(state_dir, size - held)) from exc
    finally:
        os.close(fd)
    if held_size == 0 and path.name == "lock.mdb":
        os.chmod(path, 0o600)  # os.open's mode is masked by the umask


def prepare_lock_file(state_dir: Path, store: Path) -> None:
    """Allocate ``lock.mdb`` before LMDB maps it (it writes that file through the map).

    Raises:
        CheckpointError: the filesystem has no room for it.
    """
    size, _ = _allocated(store / "lock.mdb")
    _fallocate(store / "lock.mdb", max(size, LOCK_BYTES), state_dir)


@final
class FileGuard:
    """Keeps the lock file backed by disk blocks, and notices ``data.mdb`` shrinking.

    Holds a descriptor of the file, so that :meth:`check` looks at the file LMDB has
    mapped even if the path was replaced.
    """

    def __init__(self, env: lmdb.Environment, store: Path, state_dir: Path) -> None:
        self._env = env
        self._data = store / "data.mdb"
        self._lock = store / "lock.mdb"
        self._state_dir = state_dir
        self._psize: int = env.stat()["psize"]
        try:
            self._fd = os.open(self._data, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise CheckpointError(f"cannot open the checkpoint store {self._data}: {exc}") from exc

    def check(self) -> None:
        """Raise CheckpointCorrupt if the data file is shorter than the pages in use
        (reading them would be a SIGBUS)."""
        size = os.fstat(self._fd).st_size
        # The meta pages come first: env.info() reads them through the map.
        need = 2 * self._psize
        if size >= need:
            need = (self._env.info()["last_pgno"] + 1) * self._psize
            # Measured again after reading the pages in use: a commit in another thread
            # between the two reads grows the file before it publishes its last page,
            # so only a size taken after ``need`` is comparable with it.
            size = os.fstat(self._fd).st_size
        if size < need:
            raise CheckpointCorrupt(
                f"checkpoint store {self._data.parent} was truncated while in use "
                f"({size} bytes, {need} in use): stopping before reading past its end; "
                "restart s3lb to move it aside and start afresh",
                str(self._data.parent),
            )

    def allocate_lock(self) -> None:
        """Allocate whatever part of the lock file LMDB added beyond :data:`LOCK_BYTES`
        (its reader slots are written through the map as transactions begin).

        Raises:
            CheckpointError: the filesystem has no room.
        """
        lock_size, _ = _allocated(self._lock)
        _fallocate(self._lock, lock_size, self._state_dir)

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
