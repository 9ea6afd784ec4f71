"""One daemon per ``state_dir``: an exclusive lock file, ``state_dir/daemon.lock``.

``s3lb run`` and ``s3lb import`` hold it (``flock``, exclusive, non-blocking) for the
life of the process, with their PID written in it. A second such process on the same
``state_dir`` stops at once with :class:`StateDirInUse`, naming the directory and the
PID that holds it: two daemons sharing one checkpoint store and dead-letter directory
are not supported. Read-only commands (``s3lb state``, ``s3lb check``) never take it.

Worker processes of one daemon share its store under the parent's lock, never their
own: the parent starts each child with the lock's file descriptor inherited
(``pass_fds=(lock.fd,)``) and ``env={**os.environ, **lock.child_env()}``, which names
that descriptor in ``S3LB_STATE_LOCK_FD``. A child finding that variable takes no new
lock: it checks that the descriptor is this ``state_dir``'s lock file and that the
lock is held through it (a shared open file holds the parent's ``flock``), and fails
otherwise. An environment variable alone grants nothing: without the inherited,
locked descriptor it is an error, so a stray ``S3LB_STATE_LOCK_FD`` cannot let a
second daemon in.

The file is never removed: removing a lock file races with the next process opening
it. A process killed with ``kill -9`` releases its lock with its descriptors. Its
worker processes, orphaned, let go of their inherited copy as soon as they see it gone
(the end of their stdin), which can take a moment while one is still starting: a
process finding the lock held while the PID written in it is gone waits for them, up
to :data:`ORPHAN_WAIT` seconds, instead of refusing a restart at once.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from s3lb.checkpoint._open import _unusable_message
from s3lb.errors import CheckpointError

__all__ = [
    "LOCK_FD_ENV",
    "LOCK_NAME",
    "ORPHAN_WAIT",
    "StateDirInUse",
    "StateLock",
    "lock_state_dir",
]

#: The lock file's name under ``state_dir``.
LOCK_NAME = "daemon.lock"
#: Set by a parent for its worker processes: the inherited descriptor of its lock.
LOCK_FD_ENV = "S3LB_STATE_LOCK_FD"
#: Seconds to wait for the orphaned workers of a daemon that is gone to let go.
ORPHAN_WAIT = 10.0


class StateDirInUse(CheckpointError):
    """Another process holds the ``state_dir`` lock."""


class StateLock:
    """A held ``state_dir`` lock; release it with :meth:`release` or ``with``."""

    def __init__(self, path: Path, fd: int, *, inherited: bool) -> None:
        self.path = path
        self.fd = fd
        #: True in a worker process working under its parent's lock.
        self.inherited = inherited

    def child_env(self) -> dict[str, str]:
        """The environment a worker process needs (start it with
        ``pass_fds=(self.fd,)``): the descriptor becomes inheritable."""
        os.set_inheritable(self.fd, True)
        return {LOCK_FD_ENV: str(self.fd)}

    def release(self) -> None:
        """Close the descriptor (the lock goes once no inherited copy is open)."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            with suppress(OSError):
                os.close(fd)

    def __enter__(self) -> StateLock:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def lock_state_dir(state_dir: str | Path, orphan_wait: float = ORPHAN_WAIT) -> StateLock:
    """Take ``state_dir``'s lock (creating the directory, 0700, if needed), or take
    over the parent's when ``S3LB_STATE_LOCK_FD`` is set. When it is held but the
    process that took it is gone (its orphaned workers hold it), wait for them up to
    ``orphan_wait`` seconds.

    Raises:
        StateDirInUse: another process holds it.
        CheckpointError: the directory or lock file cannot be created (a full disk, a
            read-only directory: the store's own message), or the inherited descriptor
            is not this ``state_dir``'s held lock.
    """
    root = Path(state_dir)
    path = root / LOCK_NAME
    inherited = os.environ.get(LOCK_FD_ENV)
    if inherited is not None:
        return _inherit(path, inherited)
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        # The store could not be opened either: say so as the store would (a full disk,
        # a read-only or foreign directory, and the fix).
        raise CheckpointError(_unusable_message(root, path, exc)) from None
    try:
        _take(fd, root, orphan_wait)
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass  # held all the same; on a full disk the store's own open says so
    return StateLock(path, fd, inherited=False)


def _take(fd: int, root: Path, orphan_wait: float) -> None:
    """``flock`` the open lock file ``fd``, waiting while only orphans hold it."""
    path = root / LOCK_NAME
    deadline = time.monotonic() + orphan_wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise CheckpointError(f"cannot lock {path}: {exc.strerror or exc}") from None
        holder = _read_pid(fd)
        if _running(holder):
            raise StateDirInUse(
                f"state_dir {root} is in use by another s3lb process (PID {holder}, lock "
                f"file {path}); stop it, or give this one its own state_dir"
            )
        if time.monotonic() >= deadline:
            raise StateDirInUse(
                f"state_dir {root} is still held by the worker processes of s3lb PID "
                f"{holder}, which is gone (`fuser -v {path}` lists them); stop them, or "
                "give this one its own state_dir"
            )
        time.sleep(0.05)


def _inherit(path: Path, value: str) -> StateLock:
    """The parent's lock, through the descriptor named by ``S3LB_STATE_LOCK_FD``."""
    bad = f"{LOCK_FD_ENV}={value!r} does not name the held lock {path}"
    try:
        fd = int(value)
        held, expected = os.fstat(fd), os.stat(path)
    except (ValueError, OSError):
        raise CheckpointError(bad) from None
    if (held.st_dev, held.st_ino) != (expected.st_dev, expected.st_ino):
        raise CheckpointError(bad)
    try:
        # Succeeds only through the open file that already holds it (or if nobody does).
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise CheckpointError(bad) from None
    return StateLock(path, fd, inherited=True)


def _running(pid: str) -> bool:
    """Whether process ``pid`` exists (an unknown PID counts as running)."""
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's
    return True


def _read_pid(fd: int) -> str:
    """The PID written in the lock file, or ``unknown``."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"
