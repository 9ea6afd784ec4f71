"""``s3lb run`` with ``processes`` > 1: a supervisor and its worker processes.

The supervisor checks the checkpoint store once (the isolated integrity check, and a
quarantine if it is corrupt), closes it, and starts N workers
(:mod:`s3lb.cli.workers`), each running the whole pipeline on the shared queues: SQS
spreads the messages over its consumers, LMDB serializes the workers' commits, and
each message is still deleted only by the worker that shipped every object it names.
Then the supervisor:

- sends ``READY=1`` once every worker polls, ``STOPPING=1`` at the first stop signal,
  ``WATCHDOG=1`` from its own loop, and one ``STATUS=`` line summing the workers;
- serves the one ``/metrics``: the sum of the workers' last snapshots, of the workers
  that exited before them, and its own counters (``worker_restarts``);
- restarts a worker that died (after 1 s, doubling up to 30 s while it keeps dying
  within a minute); one silent for :data:`SILENT_KILL` seconds is killed and restarted.
  What a dead worker held in flight comes back from the queue after its visibility
  timeout and resumes from its checkpoint;
- on SIGTERM or SIGINT tells every worker to drain (a ``stop`` line on its stdin), and
  a second signal to stop without waiting; a worker still running
  ``shutdown_timeout`` + :data:`EXIT_MARGIN` seconds later is killed.

A worker that finds the store damaged exits with
:data:`~s3lb.cli.workers.STORE_CORRUPT`: the supervisor stops them all and exits 1, so
that the next start (systemd's ``Restart=``) moves the store aside. So it does when a
worker exits 1 (its one line names an error a restart cannot fix: the store or the disk
full, a configuration refused): as one process would, not in a restart loop.
"""

from __future__ import annotations

import functools
import signal
from contextlib import suppress

import msgspec
import trio

from s3lb.checkpoint.lock import StateLock
from s3lb.cli import run as _run
from s3lb.cli.common import Exit
from s3lb.cli.processes import check_store, read_reports, run_worker_once, send_order
from s3lb.cli.systemd import Notifier, run_watchdog
from s3lb.cli.workers import STORE_CORRUPT, Report
from s3lb.config import Config
from s3lb.telemetry import Telemetry, TelemetrySnapshot, merge_snapshots

__all__ = ["supervise"]

#: Seconds a worker may go without a report before it is taken for hung and killed.
SILENT_KILL = 120.0
#: Seconds past ``shutdown_timeout`` a draining worker gets before it is killed.
EXIT_MARGIN = 40.0
_DECODER = msgspec.json.Decoder(Report)


class _Slot:
    """One worker index, and the process currently running as it."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: trio.Process | None = None
        self.snapshot = TelemetrySnapshot()
        self.ready = trio.Event()


class Supervisor:
    """The worker processes, their reports and their lifecycle."""

    def __init__(
        self,
        config: Config,
        telemetry: Telemetry,
        count: int,
        argv: list[str],
        lock: StateLock | None = None,
    ) -> None:
        self.config = config
        #: The state_dir lock this process holds; each worker inherits its descriptor.
        self.lock = lock
        self.own = telemetry
        self.view = Telemetry()  # what /metrics and STATUS= show: the sum
        self.slots = [_Slot(i + 1) for i in range(count)]
        self.argv = argv
        self.stopping = trio.Event()
        self.failed = 0
        self._retired = TelemetrySnapshot()
        telemetry.gauge("worker_processes", lambda: sum(s.proc is not None for s in self.slots))
        self.refresh()

    def refresh(self) -> None:
        """Recompute :attr:`view` from every snapshot."""
        parts = [self.own.export(), self._retired, *(s.snapshot for s in self.slots)]
        self.view.load(merge_snapshots(parts))

    async def run_slot(self, slot: _Slot) -> None:
        """Keep a worker running as ``slot`` until the supervisor stops."""
        delay = 1.0
        while True:
            began = trio.current_time()
            status = await self._run_once(slot)
            if self.stopping.is_set():
                return
            if status == Exit.USAGE:
                self.own.error("a worker refused the configuration; stopping all")
                self.fail(Exit.USAGE)
                return
            if status == STORE_CORRUPT:
                self.own.error("a worker found the checkpoint store damaged; stopping all")
                self.fail(Exit.FAILED)
                return
            if status == Exit.FAILED:  # its one line says why (a full store, a full disk…)
                self.own.error(
                    "a worker stopped on an error a restart cannot fix; stopping all",
                    worker=slot.index,
                )
                self.fail(Exit.FAILED)
                return
            if trio.current_time() - began > 60:
                delay = 1.0
            self.own.count("worker_restarts")
            self.own.error(
                "worker process died; restarting", worker=slot.index, status=status, after=delay
            )
            self.refresh()
            with trio.move_on_after(delay):
                await self.stopping.wait()
            if self.stopping.is_set():
                return
            delay = min(delay * 2, 30.0)

    def fail(self, status: int) -> None:
        """Stop every worker; the supervisor will exit with ``status``."""
        self.failed = self.failed or status
        self.stop()

    def stop(self) -> None:
        """Tell every worker to drain (again: to stop without waiting)."""
        self.stopping.set()
        for slot in self.slots:
            send_order(slot.proc)

    async def _run_once(self, slot: _Slot) -> int:
        def started(proc: trio.Process) -> None:
            slot.proc = proc
            self.own.info("worker process started", worker=slot.index, pid=proc.pid)
            if self.stopping.is_set():
                self.stop()

        reports = functools.partial(self._read_reports, slot)
        try:
            return await run_worker_once(self.argv, slot.index, self.lock, started, reports)
        finally:
            slot.proc = None
            self._retire(slot)

    async def _read_reports(self, slot: _Slot, fd: int, proc: trio.Process) -> None:
        def on_report(report: Report) -> None:
            if report.kind == "ready":
                slot.ready.set()
            elif report.telemetry is not None:
                slot.snapshot = report.telemetry
            self.refresh()

        if not await read_reports(fd, _DECODER, on_report, silent=SILENT_KILL):
            self.own.error("worker process silent; killing it", worker=slot.index)
            with suppress(ProcessLookupError):
                proc.kill()

    def _retire(self, slot: _Slot) -> None:
        """Keep the counters of a worker that exited; forget its gauges."""
        last = slot.snapshot
        kept = TelemetrySnapshot(last.counters, {}, last.histograms)
        self._retired = merge_snapshots([self._retired, kept])
        slot.snapshot = TelemetrySnapshot()
        self.refresh()


async def supervise(
    config: Config,
    telemetry: Telemetry,
    count: int,
    argv: list[str],
    *,
    notifier: Notifier | None = None,
    lock: StateLock | None = None,
    said: str = "",
) -> int:
    """Run ``count`` workers (``python -m s3lb *argv``) until a signal; the exit status.
    ``lock``: the state_dir lock held by this process, which the workers inherit;
    ``said``: the line that says how many and why, logged once the store is checked."""
    notifier = Notifier() if notifier is None else notifier
    await trio.to_thread.run_sync(check_store, config, telemetry)
    sup = Supervisor(config, telemetry, count, argv, lock)
    for signum in (*_run._STOP_SIGNALS, *_run._NOTED_SIGNALS):
        signal.signal(signum, signal.SIG_IGN)
    try:
        async with trio.open_nursery() as nursery:
            if config.metrics.listen:
                await _run._start_metrics(nursery, sup.view, config.metrics.listen)
            nursery.start_soon(_watch_signals, sup)
            nursery.start_soon(run_watchdog, notifier)
            if notifier.enabled:
                nursery.start_soon(_report_status, sup, notifier)
            nursery.start_soon(_announce, sup, notifier)
            nursery.start_soon(_deadline, sup, config.settings.shutdown_timeout)
            telemetry.info(said or f"worker processes: {count}")
            async with trio.open_nursery() as workers:
                for slot in sup.slots:
                    workers.start_soon(sup.run_slot, slot)
            nursery.cancel_scope.cancel()
    finally:
        notifier.close()
    sup.refresh()
    telemetry.info("s3lb stopped", **_totals(sup.view))
    return sup.failed


async def _announce(sup: Supervisor, notifier: Notifier) -> None:
    """``READY=1`` once every worker polls; ``STOPPING=1`` at the first stop."""
    async with trio.open_nursery() as nursery:

        async def when_ready() -> None:
            for slot in sup.slots:
                await slot.ready.wait()
            notifier.ready(status=_run._status(sup.view, stopping=False))
            sup.own.info("every worker process is running", processes=len(sup.slots))
            nursery.cancel_scope.cancel()

        async def when_stopping() -> None:
            await sup.stopping.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(when_ready)
        nursery.start_soon(when_stopping)
    await sup.stopping.wait()
    notifier.stopping(status=_run._status(sup.view, stopping=True))


async def _deadline(sup: Supervisor, shutdown_timeout: float) -> None:
    """Kill the workers still running ``shutdown_timeout`` + :data:`EXIT_MARGIN` after
    the stop."""
    await sup.stopping.wait()
    await trio.sleep(shutdown_timeout + EXIT_MARGIN)
    for slot in sup.slots:
        if slot.proc is not None:
            sup.own.error("worker process did not exit in time; killing it", worker=slot.index)
            with suppress(ProcessLookupError):
                slot.proc.kill()


async def _watch_signals(sup: Supervisor) -> None:
    with trio.open_signal_receiver(*_run._STOP_SIGNALS, *_run._NOTED_SIGNALS) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum in _run._NOTED_SIGNALS:
                sup.own.info("signal received; ignored", signal=name)
            elif not sup.stopping.is_set():
                sup.own.info("signal received; stopping the workers", signal=name)
                sup.stop()
            else:
                sup.own.warning("second signal; workers stop without waiting", signal=name)
                sup.stop()


async def _report_status(sup: Supervisor, notifier: Notifier) -> None:
    interval = max(sup.config.settings.stats_interval, 1.0)
    while True:
        await trio.sleep(interval)
        notifier.status(_run._status(sup.view, stopping=sup.stopping.is_set()))


def _totals(view: Telemetry) -> dict[str, int]:
    c = view.counters
    return {
        name: c[name]
        for name in ("events_indexed", "messages_deleted", "objects_failed", "worker_restarts")
    }
