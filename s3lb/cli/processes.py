"""What the supervisors of ``run`` and ``import`` (``processes`` > 1) share: the one
store check before any worker starts, starting a worker process, giving it orders and
reading its report lines.

A worker is ``python -m s3lb ARGV`` in its own session (a Ctrl-C reaches the
supervisor only), with :data:`~s3lb.cli.workers.WORKER_ENV` set to its index,
:data:`~s3lb.cli.workers.REPORT_FD_ENV` naming the write end of its report pipe, the
state_dir lock's descriptor inherited, and its orders (``stop`` lines) on stdin.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import TypeVar

import msgspec
import trio

from s3lb.checkpoint import open_checkpoint_store, open_store
from s3lb.checkpoint.lock import StateLock, lock_state_dir
from s3lb.cli.workers import REPORT_FD_ENV, STORE_CORRUPT, WORKER_ENV, WorkerLink
from s3lb.config import Config, FileOutput
from s3lb.config.cores import usable_cores
from s3lb.errors import CheckpointCorrupt, ConfigError
from s3lb.pipeline.wiring import Clients, say_quarantined
from s3lb.telemetry import Telemetry

__all__ = [
    "as_worker",
    "check_store",
    "process_count",
    "read_reports",
    "run_worker_once",
    "send_order",
    "start_worker",
]

#: Environment variables that are the supervisor's alone (one sd_notify for the unit).
_PRIVATE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")

_R = TypeVar("_R")


def check_store(config: Config, telemetry: Telemetry) -> None:
    """Open the store once (the integrity check, a quarantine), then close it."""
    settings = config.settings
    store = open_store(settings.state_dir, map_size=settings.checkpoint.map_size)
    try:
        say_quarantined(store.quarantined, telemetry)
    finally:
        store.close()


async def start_worker(
    argv: Sequence[str], index: int, lock: StateLock | None
) -> tuple[trio.Process, int]:
    """Start worker ``index`` as ``python -m s3lb *argv``; the process and the read end
    of its report pipe (the caller closes it, e.g. through :func:`read_reports`)."""
    read_fd, write_fd = os.pipe()
    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
    env[WORKER_ENV] = str(index)
    env[REPORT_FD_ENV] = str(write_fd)
    fds = [write_fd]
    if lock is not None:
        env.update(lock.child_env())
        fds.append(lock.fd)
    try:
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "s3lb", *argv],
            stdin=subprocess.PIPE,
            pass_fds=tuple(fds),
            env=env,
            start_new_session=True,  # a Ctrl-C reaches the supervisor only
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return proc, read_fd


async def run_worker_once(
    argv: Sequence[str],
    index: int,
    lock: StateLock | None,
    started: Callable[[trio.Process], None],
    reports: Callable[[int, trio.Process], Awaitable[None]],
) -> int:
    """Start worker ``index`` (:func:`start_worker`), tell ``started``, read its
    reports with ``reports(fd, proc)`` until it exits; its exit status. A worker still
    there when this is cancelled is killed."""
    proc, read_fd = await start_worker(argv, index, lock)
    started(proc)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reports, read_fd, proc)
            status = await proc.wait()
            nursery.cancel_scope.deadline = trio.current_time() + 2
    finally:
        with suppress(ProcessLookupError):
            proc.kill()
    return status


def as_worker(
    config: Config, link: WorkerLink, telemetry: Telemetry, work: Callable[[Clients], int]
) -> int:
    """Run ``work`` as a worker of a supervisor; its exit status. The supervisor checked
    the store: ``work``'s :class:`Clients` open it without a check and raise instead of
    moving it aside (this returns :data:`STORE_CORRUPT`). The supervisor's state_dir lock
    is inherited: checked, never taken anew, and let go as soon as the supervisor is gone,
    so that a restarted daemon is not refused while this orphan drains (both may then
    share the store, as workers always do)."""
    inherited = lock_state_dir(config.settings.state_dir)
    link.on_orphaned = inherited.release
    opener = functools.partial(open_checkpoint_store, on_corrupt="raise", verify="off")
    try:
        return work(Clients(open_store=opener))
    except CheckpointCorrupt as exc:
        telemetry.error("checkpoint store damaged; this worker stops", reason=str(exc))
        return STORE_CORRUPT
    finally:
        inherited.release()


def send_order(proc: trio.Process | None, order: bytes = b"stop\n") -> None:
    """Write one order line to a worker's stdin; never blocks (a pipe's buffer always
    has room for a few bytes), and a worker already gone is no error."""
    if proc is not None and proc.stdin is not None:
        with suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            os.write(proc.stdin.fileno(), order)  # type: ignore[attr-defined]


async def read_reports(
    fd: int,
    decoder: msgspec.json.Decoder[_R],
    on_report: Callable[[_R], None],
    *,
    silent: float,
) -> bool:
    """Hand each report line read from ``fd`` to ``on_report`` until the worker closes
    its end (True), or until it stays ``silent`` that many seconds (False). Lines that
    do not decode are skipped. Closes ``fd``."""
    buffer = b""
    async with trio.lowlevel.FdStream(fd) as stream:
        while True:
            with trio.move_on_after(silent) as quiet:
                chunk = await stream.receive_some(65536)
            if quiet.cancelled_caught:
                return False
            if not chunk:
                return True
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                try:
                    report = decoder.decode(line)
                except msgspec.DecodeError:
                    continue
                on_report(report)


def process_count(config: Config, processes: int | str | None = None) -> tuple[int, str]:
    """How many processes ``run`` or ``import`` use, and why (for the start line):
    ``processes`` (a command-line override) or ``s3lb.processes``. One process writes
    ``output.file``: lines of several would interleave.

    Raises:
        ConfigError: ``processes`` above 1 with ``output.file``.
    """
    settings = config.settings
    if processes is not None:
        settings = msgspec.structs.replace(settings, processes=processes)
    file_output = isinstance(config.sink, FileOutput)
    if settings.processes != "auto":
        if file_output and settings.processes > 1:
            raise ConfigError(
                "output.file is written by one process: set it to 1 or auto", "s3lb.processes"
            )
        return settings.processes, "s3lb.processes"
    if file_output:
        return 1, "auto: output.file is written by one process"
    count = settings.process_count()
    cores, why = usable_cores()
    return count, f"auto: {why}" + ("" if cores == count else f", at most {count}")
