"""``s3lb import``: backfill objects already in S3, resumably, through ``run``'s delivery.

::

    Lister ──(key order)──► window? done? ──ObjectTask──► Delivery (readers, sink, checkpoints)
      ListObjectsV2, paged         │                                   │ on_finished
                                   └──► ListingCursor ◄────────────────┘
                                          contiguous finished prefix ──► ImportCursor (LMDB)

A *job* is one bucket URL of one ``type: s3`` input with its time window; its id names
all four (``inputs[0] s3://logs/prod/ since=… to=…``). The listing is streamed in key
order, one page at a time. Objects whose LastModified falls in ``[since, to)`` become
:class:`~s3lb.pipeline.objects.ObjectTask` s for the same readers, sink, ``_id`` s and
checkpoints as ``run``; objects the checkpoint store knows as ``done`` (by ``run`` or an
earlier import) are not sent again.

Keys finish out of order (several readers). :class:`ListingCursor` keeps the listing
order and moves ``last_key`` only past keys that are all finished, done or failed, like
an acknowledgement watermark; each advance is committed in the same LMDB transaction as
the final states of the objects it passes. A rerun lists again after ``last_key``; an
object that was half read resumes from its own checkpoint. A complete job is not listed
again, unless objects failed: then the next run lists the window again and retries
them (done objects are skipped from their checkpoints, without a GET).

With a window, the listing avoids what it can: it walks the ``/``-separated levels below
the prefix, and where it meets an AWS-style ``YYYY/MM/DD/`` layout (a folder named like a
year, holding folders named like months, holding folders named like days) it skips
the month and day folders that lie wholly outside the window, with a day of margin on
each side (logs are written after the period their key names): a year away from the
window costs one call. Everything else, objects lying beside the date folders included,
is listed and filtered on LastModified.
"""

from __future__ import annotations

import functools
import logging
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

import httpx
import msgspec
import trio

from s3lb.acks import ObjectTracker
from s3lb.aws.s3 import ListedObject, S3Client
from s3lb.aws.session import AwsSession
from s3lb.aws.sqs import SqsClient, SqsError
from s3lb.checkpoint import CheckpointStore, ImportCursor, open_checkpoint_store
from s3lb.checkpoint.checkpointer import state_of
from s3lb.config import Config
from s3lb.errors import (
    AccessDenied,
    CheckpointCorrupt,
    CheckpointError,
    CheckpointFull,
    ObjectGone,
    SourceUnavailable,
)
from s3lb.model import ObjectRef
from s3lb.pipeline.import_jobs import ImportJob, ImportOptions, notification_body, plan_jobs
from s3lb.pipeline.wiring import Delivery, open_delivery
from s3lb.retry import backoff_delay
from s3lb.sources import (
    CursorEntry,
    Lister,
    ListingCursor,
    ObjectTask,
    bucket_pages,
    format_time,
    retrying,
)
from s3lb.telemetry import Telemetry

__all__ = ["Progress", "run_import"]

log = logging.getLogger("s3lb")

_Batch = list[tuple[CursorEntry, ListedObject]]

#: Listed keys held for the cursor (in flight, or finished behind a slower one) before
#: the listing waits: what bounds memory however many keys the bucket has.
MAX_PENDING = 10_000
#: SendMessageBatch attempts before an ``--enqueue`` job stops.
SEND_ATTEMPTS = 6
#: Failed objects named in the final summary (all are counted).
SHOWN_FAILURES = 20


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
    """Counts of an import, shown as a bar on a terminal, as log lines otherwise."""

    telemetry: Telemetry
    verb: str = "read"
    listed: int = 0
    listed_bytes: int = 0
    finished: int = 0
    finished_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    failed: int = 0
    listing_done: bool = False
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        """One line: ``[####----] 40% 400/1,000 objects 1.2/3.0 GiB 12,345 events …``."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        over = self.finished + self.skipped
        work_bytes = self.listed_bytes - self.skipped_bytes
        rate = self.finished_bytes / elapsed
        parts = []
        if self.listing_done:
            share = over / self.listed if self.listed else 1.0
            filled = int(share * 20)
            parts.append(f"[{'#' * filled}{'-' * (20 - filled)}] {share:4.0%}")
            parts.append(f"{over:,}/{self.listed:,} objects")
        else:
            parts.append(f"[listing…] {over:,}/{self.listed:,}+ objects")
        parts.append(f"{_bytes(self.finished_bytes)}/{_bytes(work_bytes)}")
        if self.verb == "read":
            parts.append(f"{self.telemetry.counters['events_indexed']:,} events")
        parts.append(f"{_bytes(rate)}/s")
        if self.failed:
            parts.append(f"{self.failed} failed")
        remaining = work_bytes - self.finished_bytes
        if self.listing_done and rate > 0:
            parts.append(f"ETA {_duration(max(0, remaining) / rate)}")
        elif not self.listing_done:
            parts.append("ETA ?")
        return " ".join(parts)

    def log_line(self) -> None:
        """The plain periodic line for logs (no terminal)."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.finished_bytes / elapsed
        remaining = self.listed_bytes - self.skipped_bytes - self.finished_bytes
        context: dict[str, object] = {
            "objects_listed": self.listed,
            f"objects_{self.verb}": self.finished,
            "objects_already_done": self.skipped,
            "objects_failed": self.failed,
            "bytes": self.finished_bytes,
            "bytes_per_s": round(rate),
            "listing": "done" if self.listing_done else "running",
        }
        if self.verb == "read":
            context["events_indexed"] = self.telemetry.counters["events_indexed"]
        if self.listing_done and rate > 0:
            context["eta_s"] = round(max(0, remaining) / rate)
        self.telemetry.info("import progress", **context)

    async def show(self, stream: TextIO | None, interval: float) -> None:
        """Until cancelled: redraw a bar on ``stream`` (a terminal), or log a line every
        ``interval`` seconds when ``stream`` is None."""
        if stream is None:
            while True:
                await trio.sleep(interval)
                self.log_line()
        bar = _Bar(stream)
        try:
            while True:
                bar.draw(self.line())
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


# -- running ----------------------------------------------------------------------------


@dataclass(eq=False)
class _JobRun:
    """One job during this run: its cursor, and what happened."""

    job: ImportJob
    cursor: ListingCursor
    committed: ImportCursor | None
    listing_done: bool = False
    error: str = ""
    failures: list[tuple[str, str]] = field(default_factory=list)
    failed_count: int = 0

    def snapshot(self) -> ImportCursor:
        return ImportCursor(
            job=self.job.id,
            last_key=self.cursor.last_key,
            done=self.cursor.done,
            failed=self.cursor.failed,
            complete=self.listing_done and not self.cursor.pending and not self.error,
        )

    def record_failure(self, what: str, reason: str) -> None:
        self.failed_count += 1
        if len(self.failures) < SHOWN_FAILURES:
            self.failures.append((what, reason))


class _Committer:
    """Commits final object states and advanced cursors, in one transaction each time."""

    def __init__(self, store: CheckpointStore, telemetry: Telemetry, runs: Sequence[_JobRun]):
        self.store = store
        self.telemetry = telemetry
        self.runs = runs
        self._trackers: list[ObjectTracker] = []
        self._wake = trio.Event()
        self._advanced = trio.Event()
        self._lock = trio.Lock()
        self._broken = False

    def finished(self, tracker: ObjectTracker) -> None:
        """A tracker reached its final state (sync: called from the sink or a reader)."""
        self._trackers.append(tracker)
        self._wake.set()

    def wake(self) -> None:
        """Something else moved (a cursor, the end of a listing): commit soon."""
        self._wake.set()

    async def wait_advanced(self) -> None:
        """Wait for the next commit."""
        await self._advanced.wait()

    async def run(self) -> None:
        """Commit whenever something finished (and every few seconds) until cancelled."""
        while True:
            with trio.move_on_after(5):
                await self._wake.wait()
            self._wake = trio.Event()
            await self.flush()

    async def flush(self) -> None:
        """Commit what finished and every cursor that moved since the last commit."""
        # Shielded: cancelled between taking the finished trackers and committing them,
        # their done marks would be lost while the cursor (committed later) passes them.
        async with self._lock:
            with trio.CancelScope(shield=True):
                await self._flush()

    async def _flush(self) -> None:
        trackers, self._trackers = self._trackers, []
        states = [state_of(t) for t in trackers if t.watermark is not None and t.ref.identity]
        cursors = []
        for run in self.runs:
            run.cursor.advance()
            snapshot = run.snapshot()
            if snapshot != run.committed:
                cursors.append((run, snapshot))
        if states or cursors:
            try:
                await self.store.commit(states, [c for _, c in cursors])
            except (CheckpointFull, CheckpointCorrupt):
                raise
            except CheckpointError as exc:
                self.telemetry.count("checkpoint_errors")
                if not self._broken:
                    self._broken = True
                    self.telemetry.error(
                        "checkpoint commit failed; the import goes on, but a rerun "
                        "will list again from the last committed key",
                        reason=str(exc),
                    )
            else:
                self.telemetry.count("checkpoint_commits")
                for run, snapshot in cursors:
                    run.committed = snapshot
        self._advanced.set()
        self._advanced = trio.Event()


class _Importer:
    def __init__(
        self,
        config: Config,
        telemetry: Telemetry,
        options: ImportOptions,
        session: AwsSession,
        stop: trio.Event,
        out: TextIO,
        err: TextIO,
        tty: bool,
    ) -> None:
        self.config = config
        self.telemetry = telemetry
        self.options = options
        self.session = session
        self.stop = stop
        self.out = out
        self.err = err
        self.tty = tty
        self.jobs = plan_jobs(config, options)
        self.region = session.region_for()
        self.progress = Progress(telemetry, verb="enqueued" if options.enqueue else "read")
        self.runs: list[_JobRun] = []
        #: The signal that set ``stop``, if one did.
        self.signum = int(signal.SIGINT)

    def interrupted_status(self) -> int:
        """The exit status after an interruption: 128 + the signal number."""
        return 128 + self.signum

    def _http(self) -> httpx.AsyncClient:
        workers = self.config.settings.object_workers
        return httpx.AsyncClient(
            timeout=httpx.Timeout(60, connect=10),
            limits=httpx.Limits(max_connections=workers + 16),
        )

    def _lister(self, s3: S3Client, job: ImportJob) -> Lister:
        return Lister(
            retrying(
                bucket_pages(s3, job.bucket, self.region), job.bucket, self.telemetry, self.stop
            ),
            job.prefix,
            job.window,
            plan=not job.list_all,
            page_size=self.options.page_size,
        )

    async def _open_runs(self, store: CheckpointStore) -> None:
        for job in self.jobs:
            stored = await store.get_cursor(job.id)
            cursor = ListingCursor()
            if stored is not None and not self.options.restart:
                if stored.complete and not stored.failed:
                    self.telemetry.info(
                        "import job already complete; nothing to do",
                        job=job.id,
                        done=stored.done,
                    )
                    cursor = ListingCursor(stored.last_key, stored.done)
                    run = _JobRun(job, cursor, _unstamped(stored))
                    run.listing_done = True
                    self.runs.append(run)
                    continue
                if stored.failed:
                    # Failed objects lie behind the cursor: list the window again; done
                    # objects are skipped from their checkpoints.
                    self.telemetry.info(
                        "import job had failed objects; listing its window again to retry them",
                        job=job.id,
                        failed=stored.failed,
                    )
                else:
                    cursor = ListingCursor(stored.last_key, stored.done, 0)
                    self.telemetry.info(
                        "import job resumes after its cursor",
                        job=job.id,
                        last_key=stored.last_key,
                        done=stored.done,
                    )
            self.runs.append(_JobRun(job, cursor, _unstamped(stored)))

    # -- dry run ------------------------------------------------------------------------

    async def dry_run(self) -> int:
        async with self._http() as http:
            s3 = S3Client(self.session, http)
            total = size = 0
            for job in self.jobs:
                self.telemetry.info("listing (dry run)", job=job.id)
                async with aclosing(self._lister(s3, job).objects()) as listed:
                    async for obj in listed:
                        if self.stop.is_set():
                            return self.interrupted_status()
                        if obj.last_modified not in job.window:
                            continue
                        total += 1
                        size += obj.size
                        self.out.write(
                            f"{format_time(obj.last_modified)}\t{obj.size}\ts3://{job.bucket}/{obj.key}\n"
                        )
        self.out.flush()
        summary = f"{total:,} objects, {_bytes(size)} in the window"
        print(f"s3lb import --dry-run: {summary}", file=self.err)
        return 0

    # -- local processing -----------------------------------------------------------------

    async def process(self) -> int:
        settings = self.config.settings
        async with (
            self._http() as http,
            open_delivery(self.config, self.telemetry, http, self.session) as delivery,
        ):
            await self._open_runs(delivery.store)
            committer = _Committer(delivery.store, self.telemetry, self.runs)
            s3 = delivery.reader.s3  # shares what it learnt of bucket regions
            send, receive = trio.open_memory_channel[ObjectTask](settings.object_workers)
            feed_scope, work_scope = trio.CancelScope(), trio.CancelScope()
            try:
                async with trio.open_nursery() as outer:
                    outer.start_soon(committer.run)
                    outer.start_soon(self._show_progress)
                    outer.start_soon(self._drain_on_stop, feed_scope, work_scope)
                    with work_scope:
                        async with trio.open_nursery() as work:
                            work.start_soon(delivery.run, receive)
                            async with send:
                                with feed_scope:
                                    for run in self.runs:
                                        await self._feed(run, s3, delivery, committer, send)
                                    self.progress.listing_done = True
                    if work_scope.cancelled_caught:
                        self.telemetry.warning("shutdown timeout reached; in-flight work cancelled")
                    outer.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await committer.flush()
        return self._summary()

    async def _show_progress(self) -> None:
        interval = self.config.settings.stats_interval
        await self.progress.show(self.err if self.tty else None, interval)

    async def _drain_on_stop(self, feed_scope: trio.CancelScope, work: trio.CancelScope) -> None:
        await self.stop.wait()
        feed_scope.cancel()
        timeout = self.config.settings.shutdown_timeout
        self.telemetry.info("stopped listing; draining", timeout=timeout)
        work.deadline = min(work.deadline, trio.current_time() + timeout)

    async def _feed(
        self,
        run: _JobRun,
        s3: S3Client,
        delivery: Delivery,
        committer: _Committer,
        send: trio.MemorySendChannel[ObjectTask],
    ) -> None:
        if run.listing_done:
            return
        job, cursor, store = run.job, run.cursor, delivery.store
        self.telemetry.info("import job listing", job=job.id, after=cursor.last_key or "-")
        try:
            async with aclosing(self._lister(s3, job).objects(cursor.last_key)) as listed:
                async for obj in listed:
                    if obj.last_modified not in job.window:
                        cursor.pass_over(obj.key)
                        continue
                    while cursor.pending >= MAX_PENDING:
                        await committer.wait_advanced()
                    self.progress.listed += 1
                    self.progress.listed_bytes += obj.size
                    ref = ObjectRef(
                        job.bucket,
                        obj.key,
                        etag=obj.etag,
                        size=obj.size,
                        event_time=format_time(obj.last_modified),
                    )
                    state = await store.get(ref.bucket, ref.key, ref.identity)
                    if state is not None and state.status == "done":
                        cursor.add_done(obj.key)
                        self.progress.skipped += 1
                        self.progress.skipped_bytes += obj.size
                        continue
                    entry = cursor.add(obj.key)
                    on_finished = functools.partial(
                        self._object_finished, run, entry, obj.size, committer
                    )
                    tracker = ObjectTracker(
                        ref, on_finished, on_progress=delivery.checkpointer.progressed
                    )
                    await send.send(ObjectTask(ref, job.input, tracker, self.region))
        except (AccessDenied, ObjectGone, SourceUnavailable) as exc:
            run.error = str(exc)
            self.telemetry.error("import job stopped: listing failed", job=job.id, reason=str(exc))
            return
        run.listing_done = True
        committer.wake()

    def _object_finished(
        self,
        run: _JobRun,
        entry: CursorEntry,
        size: int,
        committer: _Committer,
        tracker: ObjectTracker,
    ) -> None:
        failed = tracker.status == "failed"
        run.cursor.finish(entry, failed=failed)
        if failed:
            self.progress.failed += 1
            run.record_failure(str(tracker.ref), tracker.failure)
        else:
            self.progress.finished += 1
            self.progress.finished_bytes += size
            if tracker.status == "done":
                self.telemetry.count("objects_done")
                ref = tracker.ref
                self.telemetry.debug(
                    "object done", bucket=ref.bucket, key=ref.key, events=tracker.sent
                )
        committer.finished(tracker)

    # -- enqueue --------------------------------------------------------------------------

    async def enqueue(self) -> int:
        settings = self.config.settings
        queue = self.options.enqueue
        async with (
            self._http() as http,
            open_checkpoint_store(
                settings.state_dir, map_size=settings.checkpoint.map_size
            ) as store,
        ):
            await self._open_runs(store)
            committer = _Committer(store, self.telemetry, self.runs)
            s3, sqs = S3Client(self.session, http), SqsClient(self.session, http)
            try:
                async with trio.open_nursery() as outer:
                    outer.start_soon(committer.run)
                    outer.start_soon(self._show_progress)
                    with trio.CancelScope() as scope:
                        outer.start_soon(_cancel_on, self.stop, scope)
                        for run in self.runs:
                            await self._enqueue_job(run, s3, sqs, store, queue, committer)
                        self.progress.listing_done = True
                    outer.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await committer.flush()
        return self._summary()

    async def _enqueue_job(
        self,
        run: _JobRun,
        s3: S3Client,
        sqs: SqsClient,
        store: CheckpointStore,
        queue: str,
        committer: _Committer,
    ) -> None:
        if run.listing_done:
            return
        job, cursor = run.job, run.cursor
        self.telemetry.info("import job listing", job=job.id, after=cursor.last_key or "-")
        batch_send, batch_receive = trio.open_memory_channel[_Batch](4)
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(
                        self._sender, run, sqs, queue, committer, batch_receive.clone()
                    )
                batch_receive.close()
                async with batch_send:
                    batch: _Batch = []
                    lister = self._lister(s3, job).objects(cursor.last_key)
                    async with aclosing(lister) as listed:
                        async for obj in listed:
                            if obj.last_modified not in job.window:
                                cursor.pass_over(obj.key)
                                continue
                            while cursor.pending >= MAX_PENDING:
                                await committer.wait_advanced()
                            self.progress.listed += 1
                            self.progress.listed_bytes += obj.size
                            state = await store.get(job.bucket, obj.key, obj.etag)
                            if state is not None and state.status == "done":
                                cursor.add_done(obj.key)
                                self.progress.skipped += 1
                                self.progress.skipped_bytes += obj.size
                                continue
                            batch.append((cursor.add(obj.key), obj))
                            if len(batch) == 10:
                                await batch_send.send(batch)
                                batch = []
                    if batch:
                        await batch_send.send(batch)
        except* (AccessDenied, ObjectGone, SourceUnavailable) as group:
            run.error = str(group.exceptions[0])
            self.telemetry.error("import job stopped", job=job.id, reason=run.error)
        if not run.error:
            run.listing_done = True
        committer.wake()

    async def _sender(
        self,
        run: _JobRun,
        sqs: SqsClient,
        queue: str,
        committer: _Committer,
        receive: trio.MemoryReceiveChannel[_Batch],
    ) -> None:
        async with receive:
            async for batch in receive:
                when = format_time(datetime.now(UTC))
                pending = batch
                for attempt in range(SEND_ATTEMPTS):
                    bodies = [
                        notification_body(run.job.bucket, obj, self.region, when)
                        for _, obj in pending
                    ]
                    try:
                        refused = await sqs.send_batch(queue, bodies)
                    except SqsError as exc:
                        refused = [(i, str(exc)) for i in range(len(pending))]
                    again = {i for i, _ in refused}
                    for i, (entry, obj) in enumerate(pending):
                        if i not in again:
                            run.cursor.finish(entry)
                            self.progress.finished += 1
                            self.progress.finished_bytes += obj.size
                    committer.wake()
                    pending = [pending[i] for i in sorted(again)]
                    if not pending:
                        break
                    if attempt + 1 < SEND_ATTEMPTS:
                        self.telemetry.warning(
                            "SQS SendMessageBatch refused messages; retrying",
                            queue=queue,
                            refused=len(pending),
                            reason=refused[0][1],
                        )
                        await trio.sleep(backoff_delay(attempt, 1.0, 30.0))
                else:
                    # The cursor stays before these keys: the next run sends them.
                    raise SourceUnavailable(
                        f"SQS refused {len(pending)} messages {SEND_ATTEMPTS} times: "
                        f"{refused[0][1]}"
                    )

    # -- the end --------------------------------------------------------------------------

    def _summary(self) -> int:
        p = self.progress
        errors = [run for run in self.runs if run.error]
        failed = sum(run.failed_count for run in self.runs)
        verb = p.verb
        elapsed = _duration(time.monotonic() - p.started)
        line = (
            f"s3lb import: {p.listed:,} objects listed in the window: {p.finished:,} {verb}, "
            f"{p.skipped:,} already done, {failed:,} failed; {_bytes(p.finished_bytes)}"
        )
        if verb == "read":
            line += f", {self.telemetry.counters['events_indexed']:,} events indexed"
        print(f"{line} in {elapsed}", file=self.err)
        for run in self.runs:
            snapshot = run.snapshot()
            state = "complete" if snapshot.complete else "incomplete"
            print(
                f"  {run.job.id}: {state}, {snapshot.done:,} done, {snapshot.failed:,} failed, "
                f"last key {snapshot.last_key or '-'}",
                file=self.err,
            )
        if failed:
            print(f"failed objects (retried by the next run): {failed:,}", file=self.err)
            for run in self.runs:
                for what, reason in run.failures:
                    print(f"  {what}: {reason}", file=self.err)
            shown = sum(len(run.failures) for run in self.runs)
            if failed > shown:
                print(f"  … and {failed - shown:,} more (see the log)", file=self.err)
        for run in errors:
            print(f"job stopped: {run.job.id}: {run.error}", file=self.err)
        if self.stop.is_set() and not all(run.snapshot().complete for run in self.runs):
            print("interrupted: run the same command again to continue", file=self.err)
            return self.interrupted_status()
        return 1 if failed or errors else 0


def _unstamped(cursor: ImportCursor | None) -> ImportCursor | None:
    # Compared with fresh snapshots, whose ``updated`` is stamped by the store.
    return None if cursor is None else msgspec.structs.replace(cursor, updated=0.0)


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _watch_signals(importer: _Importer, scope: trio.CancelScope) -> None:
    telemetry = importer.telemetry
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if not importer.stop.is_set():
                telemetry.info("signal received; stopping", signal=name)
                importer.signum = int(signum)
                importer.stop.set()
            else:
                telemetry.warning("second signal; exiting without waiting", signal=name)
                scope.cancel()


async def run_import(
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
    """Run ``s3lb import``; return its exit status.

    0: every object in the window was processed (or enqueued); 1: some failed, or a
    listing could not go on (a summary says which); 128 + the signal number when
    interrupted (the next run continues). With ``handle_signals``, SIGINT/SIGTERM stop
    listing and let in-flight objects finish for ``shutdown_timeout``; a second signal
    stops at once (what was acknowledged is kept either way).

    Raises:
        ConfigError: no matching ``type: s3`` input, a bad window or bucket URL.
    """
    session = session or AwsSession(config.aws.region, config.aws.profile)
    stop = stop or trio.Event()
    err = err or sys.stderr
    importer = _Importer(
        config,
        telemetry,
        options,
        session,
        stop,
        out or sys.stdout,
        err,
        err.isatty() if tty is None else tty,
    )
    status: int | None = None
    async with trio.open_nursery() as nursery:
        if handle_signals:
            nursery.start_soon(_watch_signals, importer, nursery.cancel_scope)
        if options.dry_run:
            status = await importer.dry_run()
        elif options.enqueue:
            status = await importer.enqueue()
        else:
            status = await importer.process()
        nursery.cancel_scope.cancel()
    return importer.interrupted_status() if status is None else status
