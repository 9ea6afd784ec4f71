"""A worker process of ``s3lb run`` (``processes`` > 1): its link to the supervisor.

The supervisor (:mod:`s3lb.cli.supervisor`) starts each worker as ``python -m s3lb …
run`` with :data:`WORKER_ENV` set to its index and :data:`REPORT_FD_ENV` naming the
write end of a pipe. The worker runs the whole pipeline on the shared queues and:

- writes :class:`Report` lines (msgspec JSON) to that pipe: ``ready`` once it polls,
  then its :class:`~s3lb.telemetry.TelemetrySnapshot` every second and once more at
  the end, which the supervisor sums for the one ``/metrics`` and ``STATUS=`` line;
- takes its orders on stdin, not from signals: a ``stop`` line drains (as SIGTERM
  does), a second one stops without waiting, and the end of stdin (the supervisor
  died, even by ``kill -9``) drains too. Signals are ignored, so a SIGTERM that systemd
  sends to the whole control group, or a Ctrl-C to the terminal's process group, does
  not count as a second signal and cut the drain short.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Literal

import msgspec
import trio

from s3lb.telemetry import Telemetry, TelemetrySnapshot

__all__ = [
    "REPORT_FD_ENV",
    "STORE_CORRUPT",
    "WORKER_ENV",
    "Report",
    "WorkerLink",
    "worker_index",
]

#: The worker's index (1…N), set by the supervisor.
WORKER_ENV = "S3LB_WORKER"
#: The descriptor a worker writes its reports to.
REPORT_FD_ENV = "S3LB_WORKER_REPORT_FD"
#: A worker's exit status when it found the checkpoint store damaged: the supervisor
#: stops every worker and exits 1, and the next start moves the store aside.
STORE_CORRUPT = 3
#: Seconds between two snapshots.
REPORT_INTERVAL = 1.0


class Report(msgspec.Struct, frozen=True):
    """One line from a worker to its supervisor."""

    kind: Literal["ready", "telemetry"]
    telemetry: TelemetrySnapshot | None = None


def worker_index(environ: Mapping[str, str] | None = None) -> int | None:
    """This process's worker index, or None when it is not a worker."""
    value = (os.environ if environ is None else environ).get(WORKER_ENV, "")
    return int(value) if value.isdigit() else None


def _resident_bytes() -> float:
    """This process's resident set size (``/proc/self/statm``)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class WorkerLink:
    """The worker's end: reports out, orders in."""

    def __init__(self, index: int, report_fd: int, order_fd: int = 0) -> None:
        self.index = index
        self._report = trio.lowlevel.FdStream(os.dup(report_fd))
        os.close(report_fd)
        self._orders = trio.lowlevel.FdStream(os.dup(order_fd))
        self._wake = trio.Event()
        self._ready = False
        self._broken = False
        #: Called once the supervisor is gone: the worker lets go of the state_dir lock
        #: it inherited, so a restarted daemon can start while this one drains.
        self.on_orphaned: Callable[[], None] = lambda: None

    @classmethod
    def from_environ(cls) -> WorkerLink | None:
        """The link the supervisor set up for this process, if it is a worker."""
        index = worker_index()
        fd = os.environ.get(REPORT_FD_ENV, "")
        if index is None or not fd.isdigit():
            return None
        return cls(index, int(fd))

    def ready(self) -> None:
        """Tell the supervisor this worker polls (sent by :meth:`report` at once)."""
        self._ready = True
        self._wake.set()

    async def report(self, telemetry: Telemetry) -> None:
        """Send the ready line when due and a snapshot every second, until cancelled;
        a final snapshot is sent on the way out. The snapshot carries this process's
        CPU and memory, which the supervisor's own ``process_*`` metrics do not."""
        telemetry.gauge("worker_cpu_seconds", time.process_time)
        telemetry.gauge("worker_resident_memory_bytes", _resident_bytes)
        try:
            while True:
                with trio.move_on_after(REPORT_INTERVAL):
                    await self._wake.wait()
                if self._wake.is_set():
                    self._wake = trio.Event()
                    if self._ready:
                        await self.send(Report("ready"))
                await self.send(Report("telemetry", telemetry.export()))
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self.send(Report("telemetry", telemetry.export()))

    async def watch(self, stop: trio.Event, scope: trio.CancelScope, telemetry: Telemetry) -> None:
        """Obey the supervisor: ``stop`` drains, a second one cancels ``scope``; the end
        of stdin (the supervisor is gone) drains."""
        buffer = b""
        while True:
            try:
                chunk = await self._orders.receive_some(4096)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                chunk = b""
            if not chunk:
                self.on_orphaned()
                if not stop.is_set():
                    telemetry.warning("supervisor gone; stopping")
                    stop.set()
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip() != b"stop":
                    continue
                if not stop.is_set():
                    telemetry.info("stop requested by the supervisor; stopping")
                    stop.set()
                else:
                    telemetry.warning("second stop; exiting without waiting")
                    scope.cancel()

    async def send(self, report: msgspec.Struct) -> None:
        """Write one report line (any msgspec struct the supervisor decodes)."""
        if self._broken:
            return
        try:
            await self._report.send_all(msgspec.json.encode(report) + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self._broken = True  # the supervisor is gone: watch() drains
