"""The nursery tree of ``s3lb run`` and its bounded channels (backpressure).

::

    pollers ×queues ──ObjectTask──► readers ×object_workers ──[BulkItem]──► sink workers
         ▲                                                                    │ settle
         └──── finisher: delete / keep ◄── MessageTracker ◄── ObjectTracker ◄─┘

Every arrow but the last is a bounded memory channel: a slow cluster fills them, the
readers block, the pollers stop receiving. Shutdown: ``stop`` ends the pollers at once;
readers and sink drain what was received for up to ``shutdown_timeout``, then are
cancelled; finished messages are deleted, and unfinished ones released.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

from s3lb.acks import BulkItem, MessageTracker
from s3lb.aws.s3 import S3Client
from s3lb.aws.session import AwsSession
from s3lb.aws.sqs import SqsClient
from s3lb.checkpoint import CheckpointStore, open_checkpoint_store
from s3lb.checkpoint.checkpointer import Checkpointer
from s3lb.config import Config, ElasticsearchOutput, FileOutput
from s3lb.deadletter import DeadLetter
from s3lb.errors import ConfigError
from s3lb.pipeline.objects import SLICE_RECORDS, ObjectReader
from s3lb.sinks.elasticsearch.indexes import IndexNamer
from s3lb.sinks.elasticsearch.redact import redact_url
from s3lb.sinks.elasticsearch.sink import ElasticsearchSink
from s3lb.sinks.file import FileSink
from s3lb.sources import InputRuntime, ObjectTask
from s3lb.sources.sqs import QueueInput, SqsSource
from s3lb.telemetry import Telemetry

__all__ = ["Clients", "Delivery", "open_delivery", "run_pipeline", "say_quarantined"]

#: Parsed records waiting for the sink, per bulk worker (in lists of SLICE_RECORDS).
_BUFFERED_PER_WORKER = 2000


@dataclass(frozen=True, slots=True)
class Clients:
    """How the pipeline reaches SQS, S3, the cluster and the checkpoint store.

    The defaults are the real ones; tests pass fakes in (a fake SQS client, an S3 client
    on an in-process transport, the fake cluster's transport, a memory store).
    """

    sqs: Callable[[AwsSession, httpx.AsyncClient], SqsClient] = SqsClient
    s3: Callable[[AwsSession, httpx.AsyncClient], S3Client] = S3Client
    #: The cluster's HTTP transport; ``None`` for a real connection pool.
    es_transport: httpx.AsyncBaseTransport | None = None
    open_store: Callable[..., AbstractAsyncContextManager[CheckpointStore]] = open_checkpoint_store


def _queues(config: Config, session: AwsSession) -> list[QueueInput]:
    queues = []
    for i, item in enumerate(config.settings.inputs):
        if item.type != "sqs":
            continue
        runtime = InputRuntime.from_config(item, i)
        for url in item.queues_url:
            queues.append(QueueInput(url, session.region_for(url), runtime, item.poll_frequency))
    if not queues:
        raise ConfigError("no sqs input with queues_url: nothing to run", f"{config.root}.inputs")
    return queues


class Delivery:
    """Object readers, the sink and checkpoints: what ``run`` and ``import`` share.

    Open it with :func:`open_delivery`; feed :class:`ObjectTask` s to :meth:`run`.
    """

    def __init__(
        self,
        config: Config,
        telemetry: Telemetry,
        http: httpx.AsyncClient,
        session: AwsSession,
        store: CheckpointStore,
        clients: Clients,
    ) -> None:
        settings = config.settings
        self.telemetry = telemetry
        self.store = store
        self.dead_letter = DeadLetter(Path(settings.state_dir) / "dead-letter")
        self.checkpointer = Checkpointer(store, telemetry)
        out = config.sink
        if isinstance(out, ElasticsearchOutput):
            self.sink: ElasticsearchSink | FileSink = ElasticsearchSink(
                out,
                telemetry,
                self.dead_letter,
                transport=clients.es_transport,
                durable=self.checkpointer.wait_durable,
            )
            namer = IndexNamer(out.index)
            self._item_buffer = out.worker * _BUFFERED_PER_WORKER // SLICE_RECORDS
            content_ids = out.document_id == "content"
        else:
            self.sink = FileSink(out, telemetry)
            namer = IndexNamer("s3lb-%{+yyyy.MM.dd}")
            self._item_buffer = 2 * _BUFFERED_PER_WORKER // SLICE_RECORDS
            content_ids = False
        self._workers = settings.object_workers
        self.reader = ObjectReader(
            clients.s3(session, http),
            namer,
            telemetry,
            self.dead_letter,
            settings.max_line_bytes,
            store=store,
            content_ids=content_ids,
        )

    async def run(self, objects: trio.MemoryReceiveChannel[ObjectTask]) -> None:
        """Read and ship every task from ``objects`` until it is closed; returns when the
        sink has settled everything it was sent."""
        item_send, item_receive = trio.open_memory_channel[list[BulkItem]](self._item_buffer)
        self.telemetry.gauge(
            "bulk_items_queued", lambda: item_send.statistics().current_buffer_used
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.sink.run, item_receive)
            async with objects, item_send:
                for _ in range(self._workers):
                    nursery.start_soon(self.reader.run, objects.clone(), item_send.clone())


@asynccontextmanager
async def open_delivery(
    config: Config,
    telemetry: Telemetry,
    http: httpx.AsyncClient,
    session: AwsSession,
    clients: Clients = Clients(),
) -> AsyncIterator[Delivery]:
    """Open the checkpoint store and build a :class:`Delivery`; its background tasks
    (checkpoint commits, pruning) run inside. On exit, what was acknowledged is
    committed, whatever ended the block."""
    settings = config.settings
    async with clients.open_store(
        settings.state_dir, map_size=settings.checkpoint.map_size
    ) as store:
        say_quarantined(store.quarantined, telemetry)
        delivery = Delivery(config, telemetry, http, session, store, clients)
        try:
            async with trio.open_nursery() as background:
                background.start_soon(delivery.checkpointer.run)
                background.start_soon(_prune, store, settings.done_retention, telemetry)
                yield delivery
                background.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await delivery.checkpointer.flush()
                delivery.dead_letter.close()


def say_quarantined(quarantined: Path | None, telemetry: Telemetry) -> None:
    """Count and log, once, a store found corrupt at its opening and moved aside (to
    ``quarantined``; ``None``: it was sound)."""
    if quarantined is not None:
        telemetry.count("checkpoint_quarantined")
        telemetry.error(
            "checkpoint store was corrupt: moved aside, starting fresh (re-sent events "
            "are absorbed as duplicates)",
            quarantine=str(quarantined),
        )


async def run_pipeline(
    config: Config,
    telemetry: Telemetry,
    stop: trio.Event,
    on_ready: Callable[[], None] = lambda: None,
    *,
    session: AwsSession | None = None,
    clients: Clients = Clients(),
) -> None:
    """Run ``s3lb run`` until ``stop`` is set and the drain is over; ``clients`` are
    the real AWS, cluster and store clients unless a test passes fakes."""
    settings = config.settings
    session = session or AwsSession(config.aws.region, config.aws.profile)
    queues = _queues(config, session)
    # Long polls hold a connection for wait_time: the read timeout must exceed it.
    timeout = httpx.Timeout(settings.wait_time + 30, connect=10)
    # S3 GETs have a pool of their own: httpcore looks at every idle connection of a
    # pool for each request it starts or ends (~10 us each), and SQS's deletes and
    # heartbeats leave idle connections that the readers' GETs would pay for.
    limits = httpx.Limits(max_connections=len(queues) + 10)
    s3_limits = httpx.Limits(max_connections=settings.object_workers + 2)
    async with (
        httpx.AsyncClient(timeout=timeout, limits=limits) as http,
        httpx.AsyncClient(timeout=timeout, limits=s3_limits) as s3_http,
        open_delivery(config, telemetry, s3_http, session, clients) as delivery,
    ):
        source = SqsSource(
            clients.sqs(session, http),
            telemetry,
            settings.max_inflight_messages,
            settings.wait_time,
            checkpointer=delivery.checkpointer,
            visibility_timeout=settings.visibility_timeout,
            max_hold=settings.max_hold,
            dead_letter=delivery.dead_letter,
        )
        object_send, object_receive = trio.open_memory_channel[ObjectTask](settings.object_workers)
        finished = source.open_finish_channel()
        telemetry.gauge("messages_in_flight", lambda: source.in_flight)
        telemetry.gauge("objects_in_flight", lambda: source.objects_in_flight)
        try:
            async with trio.open_nursery() as outer:
                outer.start_soon(_finish_then_stop, source, finished, outer.cancel_scope)
                outer.start_soon(_stats, telemetry, source, settings.stats_interval)
                outer.start_soon(source.keep_visible)
                with trio.CancelScope() as work_scope:
                    async with trio.open_nursery() as work:
                        work.start_soon(delivery.run, object_receive)
                        async with trio.open_nursery() as polling, object_send:
                            for queue in queues:
                                polling.start_soon(source.poll, queue, object_send.clone())
                            telemetry.info(
                                "s3lb is running",
                                queues=len(queues),
                                **describe_output(config.sink),
                            )
                            on_ready()
                            await stop.wait()
                            polling.cancel_scope.cancel()
                        telemetry.info(
                            "stopped receiving; draining",
                            in_flight=source.in_flight,
                            timeout=settings.shutdown_timeout,
                        )
                        work_scope.deadline = trio.current_time() + settings.shutdown_timeout
                if work_scope.cancelled_caught:
                    telemetry.warning("shutdown timeout reached; in-flight work cancelled")
                source.close_finish_channel()
                outer.cancel_scope.deadline = trio.current_time() + 30
        finally:
            with trio.CancelScope(shield=True):
                await delivery.checkpointer.flush()  # what was acknowledged is kept
                await source.release_unfinished()
                telemetry.stats_line(source.in_flight)


async def _finish_then_stop(
    source: SqsSource,
    finished: trio.MemoryReceiveChannel[MessageTracker],
    scope: trio.CancelScope,
) -> None:
    await source.finish(finished)
    scope.cancel()  # ends the stats task: everything else is over


async def _prune(store: CheckpointStore, retention: float, telemetry: Telemetry) -> None:
    """Forget finished objects older than ``retention``, at start and then hourly."""
    while True:
        pruned = await store.prune(time.time() - retention)
        if pruned:
            telemetry.info("checkpoints pruned", objects=pruned)
        await trio.sleep(3600)


async def _stats(telemetry: Telemetry, source: SqsSource, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        telemetry.stats_line(source.in_flight)


def describe_output(output: ElasticsearchOutput | FileOutput) -> dict[str, str]:
    """How log lines name an output, either kind, as its configuration does:
    ``output=file path=…`` or ``output=elasticsearch hosts=…`` (passwords masked)."""
    if isinstance(output, FileOutput):
        return {"output": "file", "path": output.target()}
    return {"output": "elasticsearch", "hosts": ",".join(map(redact_url, output.host_urls()))}
