"""The Elasticsearch/OpenSearch sink: ``_bulk`` requests with per-item accounting.

``worker`` tasks each gather up to ``bulk_max_size`` documents (or what arrived within
``flush_interval``), POST them to ``_bulk`` and settle every item (see
:mod:`s3lb.sinks._bulk`). Items answered 429/5xx are sent again with backoff; a
request that fails as a whole (refused connection, timeout, 429, 5xx, 401/403, an
unreadable answer) is retried whole, with exponential backoff and jitter, and
acknowledges nothing. While a worker retries, it takes nothing new: the channels fill
and backpressure reaches the readers and the SQS pollers.
"""

from __future__ import annotations

import base64
import random
from collections import Counter
from collections.abc import Sequence

import httpx
import trio

from s3lb.config import ElasticsearchOutput
from s3lb.deadletter import DeadLetter
from s3lb.errors import SinkUnavailable
from s3lb.pipeline._acks import BulkItem, settle_items
from s3lb.sinks._bulk import build_body, classify
from s3lb.telemetry import Telemetry

__all__ = ["ElasticsearchSink", "backoff_delay"]


def backoff_delay(attempt: int, initial: float, maximum: float) -> float:
    """Delay before retry number ``attempt`` (0-based): exponential, capped, with
    jitter over the upper half so that workers do not retry in lockstep."""
    cap = min(maximum, initial * (2**attempt))
    return cap / 2 + random.uniform(0, cap / 2)


class ElasticsearchSink:
    """Ships :class:`BulkItem` lists to a cluster; settles each item's tracker."""

    def __init__(
        self,
        config: ElasticsearchOutput,
        telemetry: Telemetry,
        dead_letter: DeadLetter,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.telemetry = telemetry
        self.dead_letter = dead_letter
        self._hosts = config.host_urls()
        self._host = 0
        self._down = False
        headers = {"Content-Type": "application/x-ndjson", **config.headers}
        if config.api_key:
            headers["Authorization"] = "ApiKey " + config.api_key
        elif config.username:
            token = base64.b64encode(f"{config.username}:{config.password}".encode()).decode()
            headers["Authorization"] = "Basic " + token
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(config.timeout, connect=min(10.0, config.timeout)),
            transport=transport,
        )

    async def run(self, receive: trio.MemoryReceiveChannel[list[BulkItem]]) -> None:
        """Ship until ``receive`` is closed and drained."""
        async with self._client, receive, trio.open_nursery() as nursery:
            for _ in range(self.config.worker):
                nursery.start_soon(self._worker, receive.clone())

    async def _worker(self, receive: trio.MemoryReceiveChannel[list[BulkItem]]) -> None:
        leftover: list[BulkItem] = []
        async with receive:
            while True:
                batch, leftover = await self._gather(receive, leftover)
                if not batch:
                    return
                await self.deliver(batch)

    async def _gather(
        self, receive: trio.MemoryReceiveChannel[list[BulkItem]], batch: list[BulkItem]
    ) -> tuple[list[BulkItem], list[BulkItem]]:
        limit = self.config.bulk_max_size
        if not batch:
            try:
                batch = list(await receive.receive())
            except trio.EndOfChannel:
                return [], []
        with trio.move_on_after(self.config.flush_interval):
            while len(batch) < limit:
                try:
                    batch.extend(await receive.receive())
                except trio.EndOfChannel:
                    break
        return batch[:limit], batch[limit:]

    async def deliver(self, batch: Sequence[BulkItem]) -> None:
        """Send ``batch`` until every item is settled (indexed, duplicate or rejected)."""
        attempt = 0
        pending = list(batch)
        while pending:
            try:
                payload = await self._post(build_body(pending), len(pending))
                results = classify(payload, pending)
            except (SinkUnavailable, ValueError) as exc:
                self._went_down(str(exc))
                await self._pause(attempt)
                attempt += 1
                continue
            self._came_back()
            retry = [item for item, outcome, _ in results if outcome == "retry"]
            self._settle([(i, o, r) for i, o, r in results if o != "retry"])
            if retry:
                self.telemetry.count("bulk_item_retries", len(retry))
                reasons = Counter(r for _, o, r in results if o == "retry")
                self.telemetry.warning(
                    "bulk items will be retried", items=len(retry), reasons=dict(reasons)
                )
                await self._pause(attempt)
                attempt += 1
            pending = retry

    def _settle(self, results: Sequence[tuple[BulkItem, str, str]]) -> None:
        by_outcome: dict[str, list[BulkItem]] = {}
        for item, outcome, reason in results:
            if outcome == "rejected":
                self.dead_letter.write(
                    "rejected",
                    reason,
                    item.tracker.ref,
                    item.position,
                    _index=item.index,
                    _id=item.doc_id,
                    document=item.source.decode("utf-8", "replace"),
                )
                self.telemetry.warning(
                    "document rejected by the cluster, dead-lettered",
                    bucket=item.tracker.ref.bucket,
                    key=item.tracker.ref.key,
                    position=item.position,
                    reason=reason,
                )
            by_outcome.setdefault(outcome, []).append(item)
        for outcome, items in by_outcome.items():
            self.telemetry.count(f"events_{outcome}", len(items))
            settle_items(items, outcome)

    async def _post(self, body: bytes, n_items: int) -> bytes:
        self.telemetry.count("bulk_requests")
        for _ in range(len(self._hosts)):
            url = self._hosts[self._host] + "/_bulk"
            try:
                response = await self._client.post(url, content=body)
            except httpx.HTTPError as exc:
                # Fail over to the next host; give up once each was tried.
                self._host = (self._host + 1) % len(self._hosts)
                last = f"{url}: {type(exc).__name__}: {exc}"
                continue
            if response.status_code == 200:
                return response.content
            raise SinkUnavailable(
                f"{url}: HTTP {response.status_code} for {n_items} items: {response.text[:300]}"
            )
        raise SinkUnavailable(last)

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
