"""The Elasticsearch/OpenSearch sink: ``_bulk`` requests with per-item accounting.

``worker`` tasks each gather up to ``bulk_max_size`` documents and ``bulk_max_bytes`` of
body (or what arrived within ``flush_interval``), POST them to ``_bulk`` and settle
every item (see :mod:`s3lb.sinks.elasticsearch.bulk`):

- 2xx and 409 (already there under ``create``) acknowledge the item;
- 429 and 5xx items are sent again, alone, with exponential backoff and jitter;
- other 4xx items go to the dead-letter store (the files, or ``dead_letter_index``)
  with their document, S3 location and reason, and count as settled;
- a request answered 413 (too large for the cluster) is split in halves, down to a
  single document, which is then dead-lettered, unless it is no larger than a body
  the cluster took (or, before it took any, small): then the endpoint refuses
  everything, an outage retried with backoff (:func:`~.bulk.on_too_large`); 413s are
  logged once a minute at most. A document larger than ``bulk_max_bytes`` is
  dead-lettered without being sent.

Dead-letter entries are written off the event loop, before their items settle. A
request that fails as a whole (refused connection, no complete answer within
``timeout``, 429, 5xx, 401/403, an unreadable answer) is retried whole, with
backoff, and acknowledges nothing; refused connections and timeouts fail over to the
next host first. While a worker retries it takes nothing new: the channels fill and
backpressure reaches the readers and the SQS pollers.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import trio

from s3lb.acks import settle
from s3lb.config import ElasticsearchOutput
from s3lb.deadletter import DeadLetter, entry
from s3lb.errors import SinkUnavailable
from s3lb.retry import Backoff
from s3lb.sinks.elasticsearch.bulk import (
    build_body,
    classify,
    halves,
    index_body,
    item_size,
    on_too_large,
    partition,
    split_requests,
)
from s3lb.sinks.elasticsearch.client import Cluster
from s3lb.sinks.elasticsearch.redact import redact_url, short_reason
from s3lb.telemetry import Telemetry

if TYPE_CHECKING:
    from s3lb.acks import BulkItem

__all__ = ["ElasticsearchSink", "dead_letter_entry_id"]

#: A persistent 413 is logged at most this often (seconds).
_TOO_LARGE_LOG_EVERY = 60.0
#: Bodies smaller than this are gzipped on the event loop; larger ones in a thread.
_INLINE_GZIP = 256 * 1024


#: Every bulk request: the answer keeps of each item only its status and error, which
#: is all :func:`classify` reads (a third of the bytes for the cluster to write and for
#: this process to read). The value is percent-encoded as SigV4 signs it.
BULK_PATH = "/_bulk?filter_path=" + quote("errors,items.*.status,items.*.error", safe="")


async def _nothing() -> None:
    return None


def dead_letter_entry_id(index: str, doc_id: str) -> str:
    """The ``_id`` of a document's entry in ``dead_letter_index``: one entry per
    document, however often it is rejected."""
    return hashlib.blake2b(f"{index}\x00{doc_id}".encode(), digest_size=16).hexdigest()


class _TooLarge(Exception):
    """The cluster answered 413: the request body is above its limit."""


class ElasticsearchSink:
    """Ships :class:`BulkItem` lists to a cluster; settles each item's tracker."""

    def __init__(
        self,
        config: ElasticsearchOutput,
        telemetry: Telemetry,
        dead_letter: DeadLetter,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        durable: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.telemetry = telemetry
        self.dead_letter = dead_letter
        self.cluster = Cluster(config, transport, telemetry)
        self._down = False
        #: The largest body the cluster took: a lone document no larger answered 413
        #: is an outage, not a document to dead-letter.
        self._largest_accepted = 0
        #: When a 413 was last logged, and how many were not logged since.
        self._too_large_logged = -float("inf")
        self._too_large_quiet = 0
        #: Awaited after each delivered batch: returns once what it acknowledged is
        #: durable (the pipeline's checkpoints), so a crash re-sends at most one batch
        #: per worker.
        self._durable = durable or _nothing
        #: Workers sending a request right now (idle workers flush at once), and the
        #: scopes of workers filling a batch meanwhile (cancelled when one is done).
        self._busy = 0
        self._filling: set[trio.CancelScope] = set()
        self._bulk_path = BULK_PATH
        if config.pipeline:
            self._bulk_path += "&pipeline=" + quote(config.pipeline, safe="")

    async def run(self, receive: trio.MemoryReceiveChannel[list[BulkItem]]) -> None:
        """Ship until ``receive`` is closed and drained."""
        async with self.cluster, receive, trio.open_nursery() as nursery:
            for _ in range(self.config.worker):
                nursery.start_soon(self._worker, receive.clone())

    async def aclose(self) -> None:
        """Close the HTTP client (when :meth:`deliver` was used without :meth:`run`)."""
        await self.cluster.aclose()

    async def _worker(self, receive: trio.MemoryReceiveChannel[list[BulkItem]]) -> None:
        leftover: list[BulkItem] = []
        async with receive:
            while True:
                batch, leftover = await self._gather(receive, leftover)
                if not batch:
                    return
                self._busy += 1
                try:
                    await self.deliver(batch)
                    await self._durable()
                finally:
                    self._busy -= 1
                    # Room again: whoever is filling a batch sends it now.
                    for scope in self._filling:
                        scope.cancel()

    async def _gather(
        self, receive: trio.MemoryReceiveChannel[list[BulkItem]], batch: list[BulkItem]
    ) -> tuple[list[BulkItem], list[BulkItem]]:
        limit = self.config.bulk_max_size
        max_bytes = self.config.bulk_max_bytes
        if not batch:
            try:
                batch = list(await receive.receive())
            except trio.EndOfChannel:
                return [], []
        # An estimate (the action lines are not encoded yet): deliver() cuts exactly.
        size = sum(len(item.source) for item in batch)
        while len(batch) < limit and size < max_bytes:
            try:
                more = receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            batch.extend(more)
            size += sum(len(item.source) for item in more)
        if self._busy == 0:
            # Every other worker is idle: the cluster has room, send what there is now.
            return batch[:limit], batch[limit:]
        # The others are all sending: fill a fuller request until one of them is done,
        # or flush_interval passes.
        with trio.move_on_after(self.config.flush_interval) as scope:
            self._filling.add(scope)
            try:
                while len(batch) < limit and size < max_bytes:
                    try:
                        more = await receive.receive()
                    except trio.EndOfChannel:
                        break
                    batch.extend(more)
                    size += sum(len(item.source) for item in more)
            finally:
                self._filling.discard(scope)
        return batch[:limit], batch[limit:]

    async def deliver(self, batch: Sequence[BulkItem]) -> None:
        """Send ``batch`` until every item is settled (indexed, duplicate or rejected)."""
        requests, oversize = split_requests(
            batch, self.config.bulk_max_size, self.config.bulk_max_bytes
        )
        if oversize:
            limit = self.config.bulk_max_bytes
            await self._reject(
                [
                    (item, f"document of {item_size(item)} bytes is above bulk_max_bytes {limit}")
                    for item in oversize
                ]
            )
        work = deque(requests)
        while work:
            await self._send(work.popleft(), work)

    async def _send(self, items: list[BulkItem], work: deque[list[BulkItem]]) -> None:
        """Send one request's items until each is settled; on a 413, put both halves
        back at the front of ``work`` instead."""
        backoff = self._backoff()
        pending = items
        while pending:
            body = build_body(pending)
            try:
                payload = await self._post(self._bulk_path, body, len(pending))
                results = classify(payload, pending)
            except _TooLarge as exc:
                action = on_too_large(len(pending), len(body), self._largest_accepted)
                self.telemetry.count("bulk_too_large")
                self._log_too_large(action, len(pending), len(body), str(exc))
                if action == "outage":
                    self._went_down(str(exc))
                    await backoff.sleep()
                    continue
                self._came_back()
                if action == "reject":
                    await self._reject([(pending[0], str(exc))], logged=True)
                else:
                    work.extendleft(reversed(halves(pending)))
                return
            except (SinkUnavailable, ValueError) as exc:
                self._went_down(str(exc))
                await backoff.sleep()
                continue
            self._came_back()
            self._largest_accepted = max(self._largest_accepted, len(body))
            outcomes = partition(results)
            for outcome, done in (("indexed", outcomes.indexed), ("duplicate", outcomes.duplicate)):
                if done:
                    self.telemetry.count(f"events_{outcome}", len(done))
                    settle(done, outcome)
            if outcomes.rejected:
                await self._reject(outcomes.rejected)
            if outcomes.retry:
                self.telemetry.count("bulk_item_retries", len(outcomes.retry))
                self.telemetry.warning(
                    "bulk items will be retried",
                    items=len(outcomes.retry),
                    reasons=dict(outcomes.retry_reasons),
                )
                await backoff.sleep()
            pending = outcomes.retry

    def _log_too_large(self, action: str, items: int, nbytes: int, reason: str) -> None:
        """One line a minute at most: a persistent 413 must not flood the log."""
        now = trio.current_time()
        if now - self._too_large_logged < _TOO_LARGE_LOG_EVERY:
            self._too_large_quiet += 1
            return
        what = {
            "split": "bulk request too large for the cluster; split in halves "
            "(lower bulk_max_bytes below the cluster's http.max_content_length)",
            "reject": "document too large for the cluster alone; dead-lettered",
            "outage": "the cluster refuses even a small request as too large; "
            "retrying with backoff (check the proxy's body size limit)",
        }[action]
        self.telemetry.warning(
            what, items=items, bytes=nbytes, reason=reason, not_logged=self._too_large_quiet
        )
        self._too_large_logged, self._too_large_quiet = now, 0

    async def _reject(
        self, rejected: Sequence[tuple[BulkItem, str]], *, logged: bool = False
    ) -> None:
        """Keep each rejected document with its location and reason, then settle it
        (``logged``: the caller said so already, rate-limited)."""
        to_files = list(rejected)
        if self.config.dead_letter_index:
            to_files = await self._to_dead_letter_index(rejected)
        lines = [
            entry(
                "rejected",
                reason,
                item.tracker.ref,
                item.position,
                _index=item.index,
                _id=item.doc_id,
                document=item.source.decode("utf-8", "replace"),
            )
            for item, reason in to_files
        ]
        first_item, first_reason = rejected[0]
        ref = first_item.tracker.ref
        try:
            await self.dead_letter.write(lines)
        except OSError as exc:
            # Disk full, say: a document that cannot be kept is not settled, so its
            # object stays unfinished and its message comes back later.
            self.telemetry.count("dead_letter_errors", len(lines))
            self.telemetry.error(
                "cannot write the dead-letter store; the documents stay unsettled",
                documents=len(lines),
                bucket=ref.bucket,
                key=ref.key,
                position=first_item.position,
                reason=f"{type(exc).__name__}: {exc}",
            )
            unkept = {id(item) for item, _ in to_files}
        else:
            unkept = set()
        kept = [item for item, _ in rejected if id(item) not in unkept]
        if kept and not logged:
            self.telemetry.warning(
                "documents rejected by the cluster, dead-lettered",
                documents=len(kept),
                bucket=ref.bucket,
                key=ref.key,
                position=first_item.position,
                reason=first_reason,
            )
        self.telemetry.count("events_rejected", len(kept))
        settle(kept, "rejected")

    async def _to_dead_letter_index(
        self, rejected: Sequence[tuple[BulkItem, str]]
    ) -> list[tuple[BulkItem, str]]:
        """Index entries for ``rejected`` into ``dead_letter_index``, retrying what the
        cluster cannot take now; return those it refused (they go to the files)."""
        index = self.config.dead_letter_index
        pending = list(rejected)
        refused: list[tuple[BulkItem, str]] = []
        backoff = self._backoff()
        while pending:
            body = index_body(
                (index, dead_letter_entry_id(item.index, item.doc_id), _index_entry(item, reason))
                for item, reason in pending
            )
            try:
                payload = await self._post(BULK_PATH, body, len(pending))
                outcomes = partition(classify(payload, pending))
            except _TooLarge:
                return refused + pending
            except (SinkUnavailable, ValueError) as exc:
                self._went_down(str(exc))
                await backoff.sleep()
                continue
            self._came_back()
            refused += [pair for pair, _ in outcomes.rejected] + outcomes.duplicate
            self.telemetry.count("dead_letter_index_entries", len(outcomes.indexed))
            if outcomes.retry:
                await backoff.sleep()
            pending = outcomes.retry
        return refused

    async def _post(self, path: str, body: bytes, n_items: int) -> bytes:
        """POST ``body``; the answer of a 200, else an exception saying what to do.

        Raises:
            _TooLarge: 413.
            SinkUnavailable: no host answered, or one answered another error.
        """
        self.telemetry.count("bulk_requests")
        headers = {"Content-Type": "application/x-ndjson"}
        content = body
        level = self.config.compression_level
        if not level:
            # No compression either way: a gzipped answer costs the cluster CPU for
            # every bulk (and this process to inflate it), where the network is no limit.
            headers["Accept-Encoding"] = "identity"
        else:
            headers["Content-Encoding"] = "gzip"
            if len(body) < _INLINE_GZIP:
                content = gzip.compress(body, level)
            else:
                content = await trio.to_thread.run_sync(gzip.compress, body, level)
        started = trio.current_time()
        response = await self.cluster.request("POST", path, content=content, headers=headers)
        self.telemetry.observe("bulk_latency_seconds", trio.current_time() - started)
        if response.status_code == 200:
            return response.content
        reason = short_reason(response.status_code, response.content)
        if response.status_code == 413:
            raise _TooLarge(f"{reason} (a request of {len(body)} bytes)")
        # Let the next attempt try another host: this one may be the sick one.
        self.cluster.fail_over()
        raise SinkUnavailable(f"{redact_url(response.url)}: {reason} for {n_items} items")

    def _backoff(self) -> Backoff:
        return Backoff(self.config.backoff.init, self.config.backoff.max)

    def _went_down(self, reason: str) -> None:
        self.telemetry.count("bulk_failures")
        if not self._down:
            self._down = True
            self.telemetry.warning("cluster unavailable; retrying with backoff", reason=reason)

    def _came_back(self) -> None:
        if self._down:
            self._down = False
            self.telemetry.info("cluster available again")


def _index_entry(item: BulkItem, reason: str) -> dict[str, Any]:
    """A dead-letter entry as a document of ``dead_letter_index`` (the file entry's
    fields, with ``index``/``id`` for ``_index``/``_id``, which are reserved names)."""
    ref = item.tracker.ref
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kind": "rejected",
        "reason": reason,
        "bucket": ref.bucket,
        "key": ref.key,
        "version": ref.identity,
        "position": item.position,
        "index": item.index,
        "id": item.doc_id,
        "document": item.source.decode("utf-8", "replace"),
    }
