"""``s3lb import``: process objects already in S3 (the ``type: s3`` inputs), resumably.

``s3lb import -c CONFIG [--since T] [--to T] [--input NAME] [--dry-run] [--enqueue URL]``

Each bucket URL of each ``type: s3`` input (``buckets: [s3://bucket/prefix]``) is listed
and every object whose LastModified is in ``[since, to)`` is read, parsed and indexed by
the same readers, output, ``_id`` s and checkpoints as ``s3lb run``: an object one of
them finished is not sent again by the other. Times are ISO 8601 (``2024-01-31``,
``2018-10-15T01:00``, ``2024-01-31T12:00:00+02:00``; no zone means UTC); the flags
override the input's ``since`` and ``to``.

The listing cursor of each job is kept in the checkpoint store: after a crash or
Ctrl-C, the same command continues where it stopped, and once complete it sends
nothing. ``--enqueue QUEUE_URL`` sends one S3 notification per object to a queue
instead, for a fleet of ``s3lb run`` daemons to share the work.

With ``s3lb.processes`` (or ``--processes``) above 1, N worker processes each ship a
share of the keys, with a cursor of their own (:mod:`s3lb.cli.import_workers`);
``--dry-run`` and ``--enqueue`` stay in one process.

Exit status: 0 when every object in the window was processed, 1 when some failed (they
are named, and retried by the next run), 2 for a configuration error, 128 + the signal
number when interrupted.
"""

from __future__ import annotations

import argparse
import functools
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import trio

from s3lb.aws.s3 import ListedObject
from s3lb.aws.session import AwsSession
from s3lb.checkpoint.lock import lock_state_dir
from s3lb.cli.common import load_config, run_trio
from s3lb.cli.processes import process_count
from s3lb.cli.workers import WorkerLink
from s3lb.config import Config
from s3lb.config.schema import MAX_PROCESSES
from s3lb.errors import ConfigError
from s3lb.pipeline import Importer, ImportJob, ImportOptions, ImportStatistics, run_import
from s3lb.pipeline.import_jobs import plan_jobs
from s3lb.sources import Share, format_time
from s3lb.telemetry import Telemetry

__all__ = ["Progress", "add_parser", "print_summary", "run_command"]


def add_parser(commands: Any) -> None:
    """Register ``import`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "import",
        help="backfill objects already in S3 (type: s3 inputs), resumably",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--since", default=None, help="first LastModified to take, inclusive (ISO 8601)"
    )
    parser.add_argument("--to", default=None, help="LastModified to stop at, exclusive")
    parser.add_argument(
        "--input", default="", metavar="NAME", help="only this input (its name, or inputs[N])"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the objects in the window (LastModified, size, URL) on stdout; send "
        "nothing, change no checkpoint",
    )
    parser.add_argument(
        "--enqueue",
        default="",
        metavar="QUEUE_URL",
        help="send one S3 notification per object to this SQS queue instead of processing "
        "it, for s3lb run daemons to share",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="list the window from its start again, ignoring the stored cursor (objects "
        "already done are still skipped)",
    )
    parser.add_argument(
        "--list-all",
        action="store_true",
        help="list every key under the prefix instead of only the YYYY/MM/DD/ folders "
        "near the window (for objects whose key date is far from their LastModified)",
    )
    parser.add_argument(
        "--processes",
        type=_processes,
        default=None,
        metavar="N",
        help="worker processes, each shipping a share of the keys: a number, or auto "
        "(one per core); default: s3lb.processes of the configuration",
    )
    # A worker process's share of the keys (INDEX/COUNT), set by the supervisor.
    parser.add_argument("--share", default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=_cmd_import)


def _processes(text: str) -> int | str:
    if text == "auto":
        return text
    if not text.isdigit() or not 1 <= int(text) <= MAX_PROCESSES:
        raise argparse.ArgumentTypeError(f"expected auto or 1 to {MAX_PROCESSES}, not {text!r}")
    return int(text)


def _cmd_import(args: argparse.Namespace) -> int:
    telemetry = Telemetry()
    link = share = None
    if args.share is not None:  # a worker process: its supervisor set its environment
        link = WorkerLink.from_environ()
        if link is None:
            raise ConfigError("--share is for s3lb's own import worker processes", "--share")
        try:
            share = Share.parse(args.share)
        except ValueError as exc:
            raise ConfigError(str(exc), "--share") from None
    config = load_config(args) if link is None else None
    options = ImportOptions(
        since=args.since,
        to=args.to,
        input=args.input,
        dry_run=args.dry_run,
        enqueue=args.enqueue,
        restart=args.restart,
        list_all=args.list_all,
        share=share,
    )
    if link is not None:
        from s3lb.cli.import_workers import run_worker

        return run_worker(args, link, options, telemetry)
    assert config is not None
    if options.dry_run:  # reads no checkpoint, writes nothing
        return run_trio(_main, config, telemetry, options)
    count, _why = process_count(config, args.processes)
    with lock_state_dir(config.settings.state_dir) as lock:  # one daemon per state_dir
        if count == 1 or options.enqueue:  # --enqueue only lists and sends: one process
            return run_trio(_main, config, telemetry, options)
        from s3lb.cli.import_workers import supervise_import

        plan_jobs(config, options)  # a configuration error before any worker starts
        run = functools.partial(
            supervise_import, lock=lock, err=sys.stderr, tty=sys.stderr.isatty()
        )
        return run_trio(run, config, telemetry, args, count)


async def _main(config: Config, telemetry: Telemetry, options: ImportOptions) -> int:
    return await run_command(config, telemetry, options, handle_signals=True)


async def run_command(
    config: Config,
    telemetry: Telemetry,
    options: ImportOptions,
    *,
    session: AwsSession | None = None,
    stop: trio.Event | None = None,
    handle_signals: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    tty: bool | None = None,
) -> int:
    """Run ``s3lb import`` as the command does; return its exit status.

    A dry run lists the window on ``out`` (LastModified, size, URL). Otherwise progress
    goes to ``err`` (a bar when ``tty``, log lines when not) and a summary at the end:
    counts, each job's cursor, the failed objects, why a job stopped, and how to go on
    after an interruption. See :func:`~s3lb.pipeline.run_import` for the exit status.

    Raises:
        ConfigError: no matching ``type: s3`` input, a bad window or bucket URL.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    tty = err.isatty() if tty is None else tty
    started = time.monotonic()
    importer = Importer(
        config,
        telemetry,
        options,
        session=session,
        stop=stop,
        on_listed=functools.partial(_write_listed, out),
    )
    if options.dry_run:
        status = await run_import(importer, handle_signals=handle_signals)
        stats = importer.statistics()
        if stats.ended and not stats.interrupted:
            out.flush()
            summary = f"{stats.listed:,} objects, {_bytes(stats.listed_bytes)} in the window"
            print(f"s3lb import --dry-run: {summary}", file=err)
        return status
    verb = "enqueued" if options.enqueue else "read"
    progress = Progress(importer.statistics, telemetry, verb, started)
    async with trio.open_nursery() as nursery:
        interval = config.settings.stats_interval
        nursery.start_soon(progress.show, err if tty else None, interval)
        status = await run_import(importer, handle_signals=handle_signals)
        nursery.cancel_scope.cancel()
    stats = importer.statistics()
    if stats.ended:
        print_summary(stats, verb, time.monotonic() - started, err)
    return status


def _write_listed(out: TextIO, job: ImportJob, obj: ListedObject) -> None:
    out.write(f"{format_time(obj.last_modified)}\t{obj.size}\ts3://{job.bucket}/{obj.key}\n")


def print_summary(stats: ImportStatistics, verb: str, elapsed: float, err: TextIO) -> None:
    failed = sum(job.failed_objects for job in stats.jobs)
    line = (
        f"s3lb import: {stats.listed:,} objects listed in the window: {stats.finished:,} "
        f"{verb}, {stats.skipped:,} already done, {failed:,} failed; "
        f"{_bytes(stats.finished_bytes)}"
    )
    if verb == "read":
        line += f", {stats.events_indexed:,} events indexed"
    print(f"{line} in {_duration(elapsed)}", file=err)
    for job in stats.jobs:
        state = "complete" if job.complete else "incomplete"
        print(
            f"  {job.id}: {state}, {job.done:,} done, {job.failed:,} failed, "
            f"last key {job.last_key or '-'}",
            file=err,
        )
    if failed:
        print(f"failed objects (retried by the next run): {failed:,}", file=err)
        for job in stats.jobs:
            for what, reason in job.failures:
                print(f"  {what}: {reason}", file=err)
        shown = sum(len(job.failures) for job in stats.jobs)
        if failed > shown:
            print(f"  … and {failed - shown:,} more (see the log)", file=err)
    for job in stats.jobs:
        if job.error:
            print(f"job stopped: {job.id}: {job.error}", file=err)
    if stats.interrupted:
        print("interrupted: run the same command again to continue", file=err)


# -- progress ---------------------------------------------------------------------------


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


@dataclass
class Progress:
    """An import's :class:`~s3lb.pipeline.ImportStatistics` as it runs: a bar on a
    terminal, log lines otherwise."""

    statistics: Callable[[], ImportStatistics]
    telemetry: Telemetry
    #: What is done to an object: ``read`` (and indexed) or ``enqueued``.
    verb: str = "read"
    started: float = field(default_factory=time.monotonic)

    def line(self, stats: ImportStatistics, elapsed: float) -> str:
        """One line: ``[####----] 40% 400/1,000 objects 1.2/3.0 GiB 12,345 events …``."""
        over = stats.finished + stats.skipped
        work_bytes = stats.listed_bytes - stats.skipped_bytes
        rate = stats.finished_bytes / max(elapsed, 1e-6)
        parts = []
        if stats.listing_done:
            share = over / stats.listed if stats.listed else 1.0
            filled = int(share * 20)
            parts.append(f"[{'#' * filled}{'-' * (20 - filled)}] {share:4.0%}")
            parts.append(f"{over:,}/{stats.listed:,} objects")
        else:
            parts.append(f"[listing…] {over:,}/{stats.listed:,}+ objects")
        parts.append(f"{_bytes(stats.finished_bytes)}/{_bytes(work_bytes)}")
        if self.verb == "read":
            parts.append(f"{stats.events_indexed:,} events")
        parts.append(f"{_bytes(rate)}/s")
        if stats.failed:
            parts.append(f"{stats.failed} failed")
        remaining = work_bytes - stats.finished_bytes
        if stats.listing_done and rate > 0:
            parts.append(f"ETA {_duration(max(0, remaining) / rate)}")
        elif not stats.listing_done:
            parts.append("ETA ?")
        return " ".join(parts)

    def log_line(self, stats: ImportStatistics, elapsed: float) -> None:
        """The plain periodic line for logs (no terminal)."""
        rate = stats.finished_bytes / max(elapsed, 1e-6)
        remaining = stats.listed_bytes - stats.skipped_bytes - stats.finished_bytes
        context: dict[str, object] = {
            "objects_listed": stats.listed,
            f"objects_{self.verb}": stats.finished,
            "objects_already_done": stats.skipped,
            "objects_failed": stats.failed,
            "bytes": stats.finished_bytes,
            "bytes_per_s": round(rate),
            "listing": "done" if stats.listing_done else "running",
        }
        if self.verb == "read":
            context["events_indexed"] = stats.events_indexed
        if stats.listing_done and rate > 0:
            context["eta_s"] = round(max(0, remaining) / rate)
        self.telemetry.info("import progress", **context)

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    async def show(self, stream: TextIO | None, interval: float) -> None:
        """Until cancelled: redraw a bar on ``stream`` (a terminal), or log a line every
        ``interval`` seconds when ``stream`` is None."""
        if stream is None:
            while True:
                await trio.sleep(interval)
                self.log_line(self.statistics(), self._elapsed())
        bar = _Bar(stream)
        try:
            while True:
                bar.draw(self.line(self.statistics(), self._elapsed()))
                await trio.sleep(0.5)
        finally:
            bar.close()


class _Bar(logging.Filter):
    """One self-rewriting line on a terminal; log lines clear it before they print."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.drawn = False
        self.handlers = list(logging.getLogger("s3lb").handlers)
        for handler in self.handlers:
            handler.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        self.clear()
        return True

    def draw(self, text: str) -> None:
        width = shutil.get_terminal_size().columns - 1
        self.stream.write("\r\x1b[K" + text[:width])
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False

    def close(self) -> None:
        self.clear()
        for handler in self.handlers:
            handler.removeFilter(self)
