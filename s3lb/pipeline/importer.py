"""``s3lb import``'s engine: backfill objects already in S3, resumably, through ``run``'s
delivery.

::

    Lister ──(key order)──► window? done? ──ObjectTask──► Delivery (readers, sink, checkpoints)
      ListObjectsV2, paged         │                                   │ on_finished
                                   └──► ListingCursor ◄────────────────┘
                                          contiguous finished prefix ──► ImportCursor (LMDB)

The listing of each job (see :mod:`s3lb.pipeline.import_jobs`) is streamed in key
order; objects in its window become :class:`~s3lb.sources.ObjectTask` s for the same
readers, sink, ``_id`` s and checkpoints as ``run`` (or, with ``--enqueue``, S3
notifications on a queue); objects the checkpoint store knows as ``done`` are skipped.

Each advance of a job's :class:`~s3lb.sources.ListingCursor` is committed in the same
LMDB transaction as the final states of the objects it passes. A rerun lists again
after ``last_key``; an object that was half read resumes from its own checkpoint. A
complete job is not listed again, unless objects failed: then the next run lists the
window again and retries them (done objects are skipped from their checkpoints).

With ``ImportOptions.share`` (a worker process of a multi-process import), a job ships
only its share of the listed keys and passes over the others like keys outside the
window; its cursor is the share's own (see :mod:`s3lb.sources.shares`).

The engine prints nothing: it logs through :class:`~s3lb.telemetry.Telemetry` and
counts in :meth:`Importer.statistics`, which the command shows.
"""

from __future__ import annotations

import dataclasses
import functools
import signal
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import trio

from s3lb.acks import ObjectTracker
from s3lb.aws.s3 import ListedObject, S3Client
from s3lb.aws.session import AwsSession
from s3lb.aws.sqs import SqsClient, SqsError
from s3lb.checkpoint import CheckpointStore, open_checkpoint_store
from s3lb.config import Config
from s3lb.errors import AccessDenied, ObjectGone, SourceUnavailable
from s3lb.model import ObjectRef
from s3lb.pipeline.import_jobs import ImportJob, ImportOptions, notification_body, plan_jobs
from s3lb.pipeline.import_runs import Committer, ImportStatistics, JobRun, open_runs
from s3lb.pipeline.wiring import Clients, Delivery, open_delivery
from s3lb.retry import Backoff
from s3lb.sources import (
    CursorEntry,
    Lister,
    ObjectTask,
    bucket_pages,
    format_time,
    retrying,
)
from s3lb.telemetry import Telemetry

__all__ = ["Importer", "OnListed", "run_import"]

#: Listed keys held for the cursor (in flight, or finished behind a slower one) before
#: the listing waits: what bounds memory however many keys the bucket has.
MAX_PENDING = 10_000
#: SendMessageBatch attempts before an ``--enqueue`` job stops.
SEND_ATTEMPTS = 6


@dataclass
class _Tally:
    """The running counts of :class:`ImportStatistics` (same field names)."""

    listed: int = 0
    listed_bytes: int = 0
    finished: int = 0
    finished_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    failed: int = 0
    listing_done: bool = False


#: Called with each object in the window during a dry run.
OnListed = Callable[[ImportJob, ListedObject], None]
#: An object still to do: its cursor entry, as listed, and as the readers know it.
_Todo = tuple[CursorEntry, ListedObject, ObjectRef]
_Batch = list[tuple[CursorEntry, ListedObject]]


class Importer:
    """One ``s3lb import`` run over the jobs of ``config`` and ``options``: a dry run,
    local processing, or ``--enqueue``, as the options say (see :func:`run_import`).

    Raises:
        ConfigError: from :func:`plan_jobs`, at construction.
    """

    def __init__(
        self,
        config: Config,
        telemetry: Telemetry,
        options: ImportOptions,
        *,
        session: AwsSession | None = None,
        stop: trio.Event | None = None,
        on_listed: OnListed | None = None,
        clients: Clients | None = None,
    ) -> None:
        self.config = config
        self.telemetry = telemetry
        self.options = options
        self.session = session or AwsSession(config.aws.region, config.aws.profile)
        #: Set to stop listing and drain (what a first SIGINT/SIGTERM does).
        self.stop = stop or trio.Event()
        self.on_listed = on_listed
        self.clients = clients or Clients()
        self.jobs = plan_jobs(config, options)
        self.region = self.session.region_for()
        self.runs: list[JobRun] = []
        #: The signal that set ``stop``, if one did.
        self.signum = int(signal.SIGINT)
        self._tally = _Tally()
        self._ended = False
        self._interrupted = False

    def statistics(self) -> ImportStatistics:
        """The counts so far; final once ``ended``."""
        return ImportStatistics(
            **dataclasses.asdict(self._tally),
            events_indexed=self.telemetry.counters["events_indexed"],
            jobs=tuple(run.statistics() for run in self.runs),
            ended=self._ended,
            interrupted=self._interrupted,
        )

    def interrupted_status(self) -> int:
        """The exit status after an interruption: 128 + the signal number."""
        return 128 + self.signum

    async def run(self) -> int:
        """The run the options ask for; its exit status."""
        if self.options.dry_run:
            return await self.dry_run()
        if self.options.enqueue:
            return await self.enqueue()
        return await self.process()

    def _end(self, *, cut_short: bool = False) -> int:
        """The run is over: the exit status, and final statistics."""
        self._ended = True
        if cut_short or (
            self.stop.is_set() and not all(run.snapshot().complete for run in self.runs)
        ):
            self._interrupted = True
            return self.interrupted_status()
        failed = any(run.failed_count for run in self.runs)
        return 1 if failed or any(run.error for run in self.runs) else 0

    def _http(self) -> httpx.AsyncClient:
        workers = self.config.settings.object_workers
        return httpx.AsyncClient(
            timeout=httpx.Timeout(60, connect=10),
            limits=httpx.Limits(max_connections=workers + 16),
        )

    def _lister(self, s3: S3Client, job: ImportJob) -> Lister:
        pages = bucket_pages(s3, job.bucket, self.region)
        return Lister(
            retrying(pages, job.bucket, self.telemetry, self.stop),
            job.prefix,
            job.window,
            plan=not job.list_all,
            page_size=self.options.page_size,
        )

    async def _todo(
        self, run: JobRun, s3: S3Client, store: CheckpointStore, committer: Committer
    ) -> AsyncGenerator[_Todo, None]:
        """The listing loop of processing and ``--enqueue``: the objects of ``run``'s
        window not known as done, in key order, each added to its cursor (the others are
        passed over or counted done). Waits while the cursor holds too many keys."""
        job, cursor, tally = run.job, run.cursor, self._tally
        share = self.options.share
        self.telemetry.info("import job listing", job=job.id, after=cursor.last_key or "-")
        async with aclosing(self._lister(s3, job).objects(cursor.last_key)) as listed:
            async for obj in listed:
                theirs = share is not None and not share.holds(obj.key)
                if theirs or obj.last_modified not in job.window:
                    cursor.pass_over(obj.key)  # outside the window, or another worker's
                    continue
                while cursor.pending >= MAX_PENDING:
                    await committer.wait_advanced()
                tally.listed += 1
                tally.listed_bytes += obj.size
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
                    tally.skipped += 1
                    tally.skipped_bytes += obj.size
                    continue
                yield cursor.add(obj.key), obj, ref

    # -- dry run ------------------------------------------------------------------------

    async def dry_run(self) -> int:
        """List the window of every job, handing its objects to ``on_listed``; read,
        send and change nothing."""
        tally = self._tally
        async with self._http() as http:
            s3 = S3Client(self.session, http)
            for job in self.jobs:
                self.telemetry.info("listing (dry run)", job=job.id)
                async with aclosing(self._lister(s3, job).objects()) as listed:
                    async for obj in listed:
                        if self.stop.is_set():
                            return self._end(cut_short=True)
                        if obj.last_modified not in job.window:
                            continue
                        tally.listed += 1
                        tally.listed_bytes += obj.size
                        if self.on_listed is not None:
                            self.on_listed(job, obj)
        tally.listing_done = True
        return self._end()

    # -- local processing -----------------------------------------------------------------

    async def process(self) -> int:
        """Read and index every object of the windows, through ``run``'s delivery."""
        settings = self.config.settings
        async with (
            self._http() as http,
            open_delivery(
                self.config, self.telemetry, http, self.session, self.clients
            ) as delivery,
        ):
            self.runs = await open_runs(
                delivery.store, self.jobs, self.telemetry, restart=self.options.restart
            )
            committer = Committer(delivery.store, self.telemetry, self.runs)
            s3 = delivery.reader.s3  # shares what it learnt of bucket regions
            send, receive = trio.open_memory_channel[ObjectTask](settings.object_workers)
            feed_scope, work_scope = trio.CancelScope(), trio.CancelScope()
            try:
                async with trio.open_nursery() as outer:
                    outer.start_soon(committer.run)
                    outer.start_soon(self._drain_on_stop, feed_scope, work_scope)
                    with work_scope:
                        async with trio.open_nursery() as work:
                            work.start_soon(delivery.run, receive)
                            async with send:
                                with feed_scope:
                                    for run in self.runs:
                                        await self._feed(run, s3, delivery, committer, send)
                                    self._tally.listing_done = True
                    if work_scope.cancelled_caught:
                        self.telemetry.warning("shutdown timeout reached; in-flight work cancelled")
                    outer.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await committer.flush()
        return self._end()

    async def _drain_on_stop(self, feed_scope: trio.CancelScope, work: trio.CancelScope) -> None:
        await self.stop.wait()
        feed_scope.cancel()
        timeout = self.config.settings.shutdown_timeout
        self.telemetry.info("stopped listing; draining", timeout=timeout)
        work.deadline = min(work.deadline, trio.current_time() + timeout)

    async def _feed(
        self,
        run: JobRun,
        s3: S3Client,
        delivery: Delivery,
        committer: Committer,
        send: trio.MemorySendChannel[ObjectTask],
    ) -> None:
        if run.listing_done:
            return
        try:
            async with aclosing(self._todo(run, s3, delivery.store, committer)) as todo:
                async for entry, obj, ref in todo:
                    on_finished = functools.partial(
                        self._object_finished, run, entry, obj.size, committer
                    )
                    tracker = ObjectTracker(
                        ref, on_finished, on_progress=delivery.checkpointer.progressed
                    )
                    await send.send(ObjectTask(ref, run.job.input, tracker, self.region))
        except (AccessDenied, ObjectGone, SourceUnavailable) as exc:
            run.error = str(exc)
            self.telemetry.error(
                "import job stopped: listing failed", job=run.job.id, reason=str(exc)
            )
            return
        run.listing_done = True
        committer.wake()

    def _object_finished(
        self,
        run: JobRun,
        entry: CursorEntry,
        size: int,
        committer: Committer,
        tracker: ObjectTracker,
    ) -> None:
        failed = tracker.status in ("failed", "set_aside")
        run.cursor.finish(entry, failed=failed)
        if failed:
            self._tally.failed += 1
            run.record_failure(str(tracker.ref), tracker.failure)
        else:
            self._tally.finished += 1
            self._tally.finished_bytes += size
            if tracker.status == "done":
                self.telemetry.count("objects_done")
                ref = tracker.ref
                self.telemetry.debug(
                    "object done", bucket=ref.bucket, key=ref.key, events=tracker.sent
                )
        committer.finished(tracker)

    # -- enqueue --------------------------------------------------------------------------

    async def enqueue(self) -> int:
        """Send one S3 notification per object of the windows to the ``--enqueue`` queue."""
        settings = self.config.settings
        queue = self.options.enqueue
        async with (
            self._http() as http,
            open_checkpoint_store(
                settings.state_dir, map_size=settings.checkpoint.map_size
            ) as store,
        ):
            self.runs = await open_runs(
                store, self.jobs, self.telemetry, restart=self.options.restart
            )
            committer = Committer(store, self.telemetry, self.runs)
            s3, sqs = S3Client(self.session, http), SqsClient(self.session, http)
            try:
                async with trio.open_nursery() as outer:
                    outer.start_soon(committer.run)
                    with trio.CancelScope() as scope:
                        outer.start_soon(_cancel_on, self.stop, scope)
                        for run in self.runs:
                            await self._enqueue_job(run, s3, sqs, store, queue, committer)
                        self._tally.listing_done = True
                    outer.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await committer.flush()
        return self._end()

    async def _enqueue_job(
        self,
        run: JobRun,
        s3: S3Client,
        sqs: SqsClient,
        store: CheckpointStore,
        queue: str,
        committer: Committer,
    ) -> None:
        if run.listing_done:
            return
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
                    async with aclosing(self._todo(run, s3, store, committer)) as todo:
                        async for entry, obj, _ in todo:
                            batch.append((entry, obj))
                            if len(batch) == 10:
                                await batch_send.send(batch)
                                batch = []
                    if batch:
                        await batch_send.send(batch)
        except* (AccessDenied, ObjectGone, SourceUnavailable) as group:
            run.error = str(group.exceptions[0])
            self.telemetry.error("import job stopped", job=run.job.id, reason=run.error)
        if not run.error:
            run.listing_done = True
        committer.wake()

    async def _sender(
        self,
        run: JobRun,
        sqs: SqsClient,
        queue: str,
        committer: Committer,
        receive: trio.MemoryReceiveChannel[_Batch],
    ) -> None:
        async with receive:
            async for batch in receive:
                when = format_time(datetime.now(UTC))
                pending = batch
                backoff = Backoff(initial=1.0, maximum=30.0)
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
                            self._tally.finished += 1
                            self._tally.finished_bytes += obj.size
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
                        await backoff.sleep()
                else:
                    # The cursor stays before these keys: the next run sends them.
                    raise SourceUnavailable(
                        f"SQS refused {len(pending)} messages {SEND_ATTEMPTS} times: "
                        f"{refused[0][1]}"
                    )


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _watch_signals(importer: Importer, scope: trio.CancelScope) -> None:
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


async def run_import(importer: Importer, *, handle_signals: bool = False) -> int:
    """Run ``s3lb import``; return its exit status.

    0: every object in the window was processed (or enqueued, or listed by a dry run);
    1: some failed, or a listing could not go on (the statistics say which); 128 + the
    signal number when interrupted (the next run continues). With ``handle_signals``,
    SIGINT/SIGTERM stop listing and let in-flight objects finish for
    ``shutdown_timeout``; a second signal stops at once, before the statistics are final
    (what was acknowledged is kept either way).
    """
    status: int | None = None
    async with trio.open_nursery() as nursery:
        if handle_signals:
            nursery.start_soon(_watch_signals, importer, nursery.cancel_scope)
        status = await importer.run()
        nursery.cancel_scope.cancel()
    return importer.interrupted_status() if status is None else status
