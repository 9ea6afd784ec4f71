"""The Elasticsearch/OpenSearch sink: ``_bulk`` requests with per-item accounting.

``worker`` tasks each gather up to ``bulk_max_size`` documents and ``bulk_max_bytes`` of
body (or what arrived within ``flush_interval``), POST them to ``_bulk`` and settle
every item (see :mod:`s3lb.sinks.elasticsearch.bulk`):

- 2xx and 409 (already there under ``create``) acknowledge the item;
- 429 and 5xx items are sent again, alone, with exponential backoff and jitter;
- other 4xx items go to the dead-letter store (the files, or ``dead_letter_index``)
  with their document, S3 location and reason, and count as settled;
- a request answered 413 (too large for the cluster) is split in halves, down to a
  single document, which is then dead-lettered; a document larger than
  ``bulk_max_bytes`` is dead-lettered without being sent.

A request that fails as a whole (refused connection, timeout, 429, 5xx, 401/403, an
unreadable answer) is retried whole, with backoff, and acknowledges nothing; refused
connections and timeouts fail over to the next host first. While a worker retries it
takes nothing new: the channels fill and backpressure reaches the readers and the SQS
pollers.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import msgspec
import trio

from s3lb.acks import settle
from s3lb.config import ElasticsearchOutput
from s3lb.deadletter import DeadLetter
from s3lb.errors import SinkUnavailable
from s3lb.retry import backoff_delay
from s3lb.sinks.elasticsearch.bulk import build_body, classify, item_size, split_requests
from s3lb.sinks.elasticsearch.client import Cluster, redact_url
from s3lb.telemetry import Telemetry

if TYPE_CHECKING:
    from s3lb.acks import BulkItem

__all__ = ["ElasticsearchSink", "dead_letter_entry_id"]

_encoder = msgspec.json.Encoder()
#: Bodies smaller than this are gzipped on the event loop; larger ones in a thread.
_INLINE_GZIP = 256 * 1024


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
        self.cluster = Cluster(config, transport)
        self._down = False
        #: Awaited after each delivered batch: returns once what it acknowledged is
        #: durable (the pipeline's checkpoints), so a crash re-sends at most one batch
        #: per worker.
        self._durable = durable or _nothing
        #: Workers sending a request right now (idle workers flush at once), and the
        #: scopes of workers filling a batch meanwhile (cancelled when one is done).
        self._busy = 0
        self._filling: set[trio.CancelScope] = set()
        self._bulk_path = "/_bulk"
        if config.pipeline:
            self._bulk_path += "?pipeline=" + quote(config.pipeline, safe="")

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
        attempt = 0
        pending = items
        while pending:
            body = build_body(pending)
            try:
                payload = await self._post(self._bulk_path, body, len(pending))
                results = classify(payload, pending)
            except _TooLarge as exc:
                self._came_back()
                self.telemetry.count("bulk_too_large")
                if len(pending) == 1:
                    await self._reject([(pending[0], str(exc))])
                    return
                self.telemetry.warning(
                    "bulk request too large for the cluster; split in halves "
                    "(lower bulk_max_bytes below the cluster's http.max_content_length)",
                    items=len(pending),
                    bytes=len(body),
                )
                half = len(pending) // 2
                work.appendleft(pending[half:])
                work.appendleft(pending[:half])
                return
            except (SinkUnavailable, ValueError) as exc:
                self._went_down(str(exc))
                await self._pause(attempt)
                attempt += 1
                continue
            self._came_back()
            retry = [item for item, outcome, _ in results if outcome == "retry"]
            rejected = [(item, reason) for item, o, reason in results if o == "rejected"]
            for outcome in ("indexed", "duplicate"):
                done = [item for item, o, _ in results if o == outcome]
                if done:
                    self.telemetry.count(f"events_{outcome}", len(done))
                    settle(done, outcome)
            if rejected:
                await self._reject(rejected)
            if retry:
                self.telemetry.count("bulk_item_retries", len(retry))
                reasons = Counter(r for _, o, r in results if o == "retry")
                self.telemetry.warning(
                    "bulk items will be retried", items=len(retry), reasons=dict(reasons)
                )
                await self._pause(attempt)
                attempt += 1
            pending = retry

    async def _reject(self, rejected: Sequence[tuple[BulkItem, str]]) -> None:
        """Keep each rejected document with its location and reason, then settle it."""
        to_files = list(rejected)
        if self.config.dead_letter_index:
            to_files = await self._to_dead_letter_index(rejected)
        unkept: set[int] = set()
        for item, reason in to_files:
            ref = item.tracker.ref
            try:
                self.dead_letter.write(
                    "rejected",
                    reason,
                    ref,
                    item.position,
                    _index=item.index,
                    _id=item.doc_id,
                    document=item.source.decode("utf-8", "replace"),
                )
            except OSError as exc:
                # Disk full, say: a document that cannot be kept is not settled, so its
                # object stays unfinished and its message comes back later.
                unkept.add(id(item))
                self.telemetry.count("dead_letter_errors")
                self.telemetry.error(
                    "cannot write the dead-letter store; the document stays unsettled",
                    bucket=ref.bucket,
                    key=ref.key,
                    position=item.position,
                    reason=f"{type(exc).__name__}: {exc}",
                )
        first_item, first_reason = rejected[0]
        self.telemetry.warning(
            "documents rejected by the cluster, dead-lettered",
            documents=len(rejected) - len(unkept),
            bucket=first_item.tracker.ref.bucket,
            key=first_item.tracker.ref.key,
            position=first_item.position,
            reason=first_reason,
        )
        kept = [item for item, _ in rejected if id(item) not in unkept]
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
        attempt = 0
        while pending:
            parts: list[bytes] = []
            for item, reason in pending:
                entry_id = dead_letter_entry_id(item.index, item.doc_id)
                parts.append(_encoder.encode({"index": {"_index": index, "_id": entry_id}}) + b"\n")
                parts.append(_encoder.encode(_index_entry(item, reason)) + b"\n")
            try:
                payload = await self._post("/_bulk", b"".join(parts), len(pending))
                statuses = _statuses(payload, len(pending))
            except _TooLarge:
                return refused + pending
            except (SinkUnavailable, ValueError) as exc:
                self._went_down(str(exc))
                await self._pause(attempt)
                attempt += 1
                continue
            self._came_back()
            retry = []
            for pair, status in zip(pending, statuses, strict=True):
                if 200 <= status < 300:
                    continue
                if status == 429 or status >= 500:
                    retry.append(pair)
                else:
                    refused.append(pair)
            self.telemetry.count("dead_letter_index_entries", len(pending) - len(retry))
            if retry:
                await self._pause(attempt)
                attempt += 1
            pending = retry
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
        if level:
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
        text = response.text[:300]
        if response.status_code == 413:
            raise _TooLarge(f"HTTP 413: request of {len(body)} bytes too large: {text}")
        # Let the next attempt try another host: this one may be the sick one.
        self.cluster.fail_over()
        raise SinkUnavailable(
            f"{redact_url(response.url)}: HTTP {response.status_code} for {n_items} items: {text}"
        )

    async def _pause(self, attempt: int) -> None:
        backoff = self.config.backoff
        await trio.sleep(backoff_delay(attempt, backoff.init, backoff.max))

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


class _Item(msgspec.Struct):
    status: int = 0


class _Statuses(msgspec.Struct):
    items: list[dict[str, _Item]] = []


_statuses_decoder = msgspec.json.Decoder(_Statuses)


def _statuses(payload: bytes, expected: int) -> list[int]:
    try:
        response = _statuses_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ValueError(f"unreadable bulk response: {exc}") from None
    if len(response.items) != expected:
        raise ValueError(f"bulk response has {len(response.items)} items for {expected} sent")
    return [next(iter(entry.values()), _Item()).status for entry in response.items]
