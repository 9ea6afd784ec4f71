"""``s3lb import`` with ``processes`` > 1: a supervisor and one worker process per share.

Worker ``i`` of ``N`` is ``python -m s3lb … import … --share i/N`` (the flag is hidden,
and refused outside a worker): it lists every job's whole window (listing costs little
next to reading and indexing the objects) and ships only the keys of its share (see
:mod:`s3lb.sources.shares`), committing its own cursor, ``JOB share=i/N``. A rerun with
the same N resumes each share after its cursor; with another N, the shares' cursors
start afresh and the objects the store knows as done are skipped without a GET.

The supervisor holds the state_dir lock (the workers inherit it), checks the store
once, starts the workers (:mod:`s3lb.cli.processes`) and:

- reads each worker's :class:`ImportReport` lines (its statistics, every second and at
  the end), shows one progress bar or log line summing them, and prints one summary;
- on SIGINT or SIGTERM tells every worker to stop (a ``stop`` line on its stdin): it
  stops listing, drains for ``shutdown_timeout`` and commits its cursor; a second
  signal stops them without waiting; a worker still running ``shutdown_timeout`` +
  :data:`~s3lb.cli.supervisor.EXIT_MARGIN` seconds later is killed;
- restarts a worker killed by a signal (after 1 s, doubling up to 30 s), which resumes
  from its share's cursor and its objects' checkpoints; one that exits with an error
  status is not restarted (it logged why). A worker that refused the configuration or
  found the store damaged stops the others.

The exit status is the worst of the workers' (0, then 1, 2…), or 128 + the signal
number when a signal interrupted the import before every share was complete.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import signal
import time
from contextlib import suppress
from typing import TextIO

import msgspec
import trio

from s3lb.checkpoint.lock import StateLock
from s3lb.cli.common import Exit, load_config, run_trio
from s3lb.cli.import_ import Progress, print_summary
from s3lb.cli.processes import as_worker, check_store, read_reports, run_worker_once, send_order
from s3lb.cli.supervisor import EXIT_MARGIN, SILENT_KILL
from s3lb.cli.workers import REPORT_INTERVAL, STORE_CORRUPT, WorkerLink
from s3lb.config import Config
from s3lb.pipeline import Clients, Importer, ImportOptions, ImportStatistics
from s3lb.pipeline.import_runs import merge_statistics
from s3lb.sources import Share
from s3lb.telemetry import Telemetry, tag_logs

__all__ = ["ImportReport", "run_worker", "supervise_import"]

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ImportReport(msgspec.Struct, frozen=True):
    """One line from an import worker to its supervisor: its statistics so far."""

    statistics: ImportStatistics


_DECODER = msgspec.json.Decoder(ImportReport)


# -- the worker -------------------------------------------------------------------------


def run_worker(
    args: argparse.Namespace, link: WorkerLink, options: ImportOptions, telemetry: Telemetry
) -> int:
    """Import one share, reporting to the supervisor and obeying it; the exit status.
    The supervisor checked the store: a worker neither checks it again nor moves it
    aside (it exits :data:`~s3lb.cli.workers.STORE_CORRUPT` instead)."""
    tag_logs(worker=link.index)
    config = load_config(args, on_warning=lambda _w: None)  # the supervisor logged them
    work = functools.partial(run_trio, _work, config, telemetry, options, link)
    return as_worker(config, link, telemetry, work)


async def _work(
    config: Config,
    telemetry: Telemetry,
    options: ImportOptions,
    link: WorkerLink,
    clients: Clients,
) -> int:
    # Orders come on stdin: a signal to the terminal's process group must not count.
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    importer = Importer(config, telemetry, options, clients=clients)
    status: int | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.watch, importer.stop, nursery.cancel_scope, telemetry)
            nursery.start_soon(_report, link, importer)
            status = await importer.run()
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            await link.send(ImportReport(importer.statistics()))
    return importer.interrupted_status() if status is None else status


async def _report(link: WorkerLink, importer: Importer) -> None:
    while True:
        await link.send(ImportReport(importer.statistics()))
        await trio.sleep(REPORT_INTERVAL)


def worker_argv(args: argparse.Namespace, share: Share, *, restart: bool) -> list[str]:
    """The command line of the worker of ``share``: this one's options, and its share."""
    argv = ["-c", args.config, "--log-level", args.log_level, "--log-format", args.log_format]
    argv += ["import", f"--share={share}"]
    if args.since is not None:
        argv.append(f"--since={args.since}")
    if args.to is not None:
        argv.append(f"--to={args.to}")
    if args.input:
        argv.append(f"--input={args.input}")
    if args.list_all:
        argv.append("--list-all")
    if restart:
        argv.append("--restart")
    return argv


# -- the supervisor ---------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Worker:
    """One share, and the process currently importing it."""

    share: Share
    proc: trio.Process | None = None
    #: The statistics of the running (or last) process, and of those killed before it.
    current: ImportStatistics = dataclasses.field(default_factory=ImportStatistics)
    earlier: list[ImportStatistics] = dataclasses.field(default_factory=list)
    #: The exit status of the last process; None while it runs.
    status: int | None = None

    def statistics(self) -> ImportStatistics:
        """This share's counts over every process that imported it."""
        if not self.earlier:
            return self.current
        summed = merge_statistics([*self.earlier, self.current])
        last = self.current
        return dataclasses.replace(
            summed,
            jobs=last.jobs,
            listing_done=last.listing_done,
            ended=last.ended,
            interrupted=last.interrupted,
        )


class ImportSupervisor:
    """The worker processes of one import, their reports and their lifecycle."""

    def __init__(
        self,
        telemetry: Telemetry,
        args: argparse.Namespace,
        count: int,
        lock: StateLock | None,
    ) -> None:
        self.own = telemetry
        self.args = args
        self.lock = lock
        self.workers = [_Worker(Share(i + 1, count)) for i in range(count)]
        self.stopping = trio.Event()
        #: The signal that stopped the import, if one did.
        self.signum = 0
        self.failed = 0
        self.restarts = 0

    def statistics(self) -> ImportStatistics:
        """The sum of every share's statistics."""
        return merge_statistics([worker.statistics() for worker in self.workers])

    def stop(self) -> None:
        """Tell every worker to drain (again: to stop without waiting)."""
        self.stopping.set()
        for worker in self.workers:
            send_order(worker.proc)

    async def run_worker(self, worker: _Worker) -> None:
        """Keep ``worker``'s share imported until it exits by itself, or the stop."""
        delay = 1.0
        first = True
        while True:
            argv = worker_argv(self.args, worker.share, restart=first and self.args.restart)
            first = False
            worker.status = status = await self._run_once(worker, argv)
            if status in (Exit.USAGE, STORE_CORRUPT):
                what = (
                    "refused the configuration"
                    if status == Exit.USAGE
                    else "found the store damaged"
                )
                self.own.error(f"an import worker {what}; stopping all", worker=worker.share.index)
                self.failed = max(self.failed, Exit.USAGE if status == Exit.USAGE else Exit.FAILED)
                self.stop()
            if status >= 0 or self.stopping.is_set():
                return
            self.restarts += 1
            self.own.count("worker_restarts")
            self.own.error(
                "import worker process died; restarting",
                worker=worker.share.index,
                status=status,
                after=delay,
            )
            worker.earlier.append(worker.current)
            worker.current = ImportStatistics()
            with trio.move_on_after(delay):
                await self.stopping.wait()
            if self.stopping.is_set():
                return
            delay = min(delay * 2, 30.0)

    async def _run_once(self, worker: _Worker, argv: list[str]) -> int:
        index = worker.share.index

        def started(proc: trio.Process) -> None:
            worker.proc = proc
            self.own.info("import worker process started", worker=index, pid=proc.pid)
            if self.stopping.is_set():
                self.stop()

        reports = functools.partial(self._read_reports, worker)
        try:
            return await run_worker_once(argv, index, self.lock, started, reports)
        finally:
            worker.proc = None

    async def _read_reports(self, worker: _Worker, fd: int, proc: trio.Process) -> None:
        def on_report(report: ImportReport) -> None:
            worker.current = report.statistics

        if not await read_reports(fd, _DECODER, on_report, silent=SILENT_KILL):
            self.own.error("import worker process silent; killing it", worker=worker.share.index)
            with suppress(ProcessLookupError):
                proc.kill()

    def exit_status(self) -> int:
        """The worst of the workers' statuses; 128 + the signal when one interrupted
        the import."""
        statuses = [w.status if w.status is not None else -1 for w in self.workers]
        if self.signum and any(s < 0 or s >= 128 for s in statuses):
            return 128 + self.signum
        # Without a signal, only a failing worker stops the others: theirs are not news.
        return max([self.failed, *(s for s in statuses if 0 <= s < 128)])


async def supervise_import(
    config: Config,
    telemetry: Telemetry,
    args: argparse.Namespace,
    count: int,
    *,
    lock: StateLock | None = None,
    err: TextIO,
    tty: bool,
) -> int:
    """Import with ``count`` worker processes, one share each; the exit status."""
    started = time.monotonic()
    await trio.to_thread.run_sync(check_store, config, telemetry)
    sup = ImportSupervisor(telemetry, args, count, lock)
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    progress = Progress(sup.statistics, telemetry, "read", started)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, sup)
        nursery.start_soon(_deadline, sup, config.settings.shutdown_timeout)
        nursery.start_soon(progress.show, err if tty else None, config.settings.stats_interval)
        telemetry.info("starting import worker processes", processes=count)
        async with trio.open_nursery() as workers:
            for worker in sup.workers:
                workers.start_soon(sup.run_worker, worker)
        nursery.cancel_scope.cancel()
    stats = sup.statistics()
    if stats.ended:
        print_summary(stats, "read", time.monotonic() - started, err)
        if sup.restarts:
            print(
                f"worker processes restarted: {sup.restarts} (an object under way when its "
                "worker died may be counted twice)",
                file=err,
            )
    return sup.exit_status()


async def _watch_signals(sup: ImportSupervisor) -> None:
    with trio.open_signal_receiver(*_STOP_SIGNALS) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if not sup.stopping.is_set():
                sup.own.info("signal received; stopping the import workers", signal=name)
                sup.signum = int(signum)
            else:
                sup.own.warning("second signal; workers stop without waiting", signal=name)
            sup.stop()


async def _deadline(sup: ImportSupervisor, shutdown_timeout: float) -> None:
    """Kill the workers still running ``shutdown_timeout`` + ``EXIT_MARGIN`` after the stop."""
    await sup.stopping.wait()
    await trio.sleep(shutdown_timeout + EXIT_MARGIN)
    for worker in sup.workers:
        if worker.proc is not None:
            sup.own.error(
                "import worker did not exit in time; killing it", worker=worker.share.index
            )
            with suppress(ProcessLookupError):
                worker.proc.kill()
