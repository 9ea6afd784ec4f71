"""The bulk sink on Trio's autojump clock, against the fake cluster's in-process
transport: outages, per-item outcomes and lost responses, in virtual time."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import trio

from s3lb.config import loads
from s3lb.deadletter import DeadLetter
from s3lb.model import ObjectRef, document_id
from s3lb.pipeline._acks import BulkItem, ObjectTracker
from s3lb.sinks.elasticsearch import ElasticsearchSink
from s3lb.telemetry import Telemetry
from tests.fakes.fake_es import FakeEs

REF = ObjectRef("bucket", "key.log", "etag")


class TimedTransport(httpx.AsyncBaseTransport):
    """The fake's transport, noting the (virtual) time of every request."""

    def __init__(self, fake: FakeEs) -> None:
        self.inner = fake.transport()
        self.times: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(trio.current_time())
        return await self.inner.handle_async_request(request)


def make_sink(
    fake: FakeEs, tmp_path: Path, **output: object
) -> tuple[ElasticsearchSink, TimedTransport]:
    settings = {"hosts": ["http://es.invalid:9200"], "index": "logs", **output}
    config, _ = loads("output.elasticsearch: " + json.dumps(settings))
    assert config.output.elasticsearch is not None
    transport = TimedTransport(fake)
    sink = ElasticsearchSink(
        config.output.elasticsearch, Telemetry(), DeadLetter(tmp_path / "dl"), transport=transport
    )
    return sink, transport


def make_items(n: int) -> tuple[ObjectTracker, list[BulkItem]]:
    finished: list[ObjectTracker] = []
    tracker = ObjectTracker(REF, finished.append)
    items = [
        BulkItem("logs", document_id(REF, p), b'{"n":%d}' % p, tracker, p) for p in range(1, n + 1)
    ]
    tracker.add(n)
    tracker.finish_reading()
    return tracker, items


async def test_an_outage_acknowledges_nothing_and_backs_off_exponentially_to_the_cap(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    fake.down = "503"
    sink, transport = make_sink(fake, tmp_path, **{"backoff.init": "1s", "backoff.max": "16s"})
    tracker, items = make_items(10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.deliver, items)
        await trio.sleep(120)
        assert tracker.settled == 0 and fake.docs == {}
        gaps = [b - a for a, b in zip(transport.times, transport.times[1:], strict=False)]
        # Jitter keeps each delay within [cap/2, cap]; the cap is 2**attempt s, at most 16 s.
        for attempt, gap in enumerate(gaps):
            cap = min(16.0, 2.0**attempt)
            assert cap / 2 <= gap <= cap + 1e-6, (attempt, gap)
        assert max(gaps) > 8  # the cap was reached
        fake.down = None
    assert tracker.status == "done" and tracker.counts == {"indexed": 10}
    assert len(fake.docs) == 10


async def test_each_item_outcome_is_handled_on_its_own(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    tracker, items = make_items(5)
    fake.put_doc("logs", items[2].doc_id, {"n": 3})  # already there: 409
    fake.item_plan = {items[1].doc_id: 429, items[3].doc_id: 400, items[4].doc_id: 503}
    sink, transport = make_sink(fake, tmp_path)
    await sink.deliver(items)
    sink.dead_letter.close()
    assert tracker.status == "done"
    assert tracker.counts == {"indexed": 3, "duplicate": 1, "rejected": 1}
    assert len(transport.times) == 2  # the 429 and 503 items were sent once more, alone
    assert fake.requests[1].n_items == 2
    assert set(fake.docs) == {("logs", items[i].doc_id) for i in (0, 1, 2, 4)}
    (dead,) = (tmp_path / "dl").glob("*.ndjson")
    entry = json.loads(dead.read_text())
    assert entry["kind"] == "rejected" and entry["_id"] == items[3].doc_id
    assert entry["reason"].startswith("HTTP 400 mapper_parsing_exception")
    assert entry["bucket"] == "bucket" and entry["key"] == "key.log" and entry["position"] == 4
    assert json.loads(entry["document"]) == {"n": 4}


async def test_a_lost_response_is_resent_and_absorbed_as_duplicates(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    fake.apply_then_drop = 1
    sink, _ = make_sink(fake, tmp_path)
    tracker, items = make_items(20)
    await sink.deliver(items)
    assert tracker.counts == {"duplicate": 20}
    assert len(fake.docs) == 20


async def test_auth_failure_is_an_outage_not_a_reject(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    fake.down = "401"
    sink, _ = make_sink(fake, tmp_path)
    tracker, items = make_items(3)
    with trio.move_on_after(600):
        await sink.deliver(items)
    assert tracker.settled == 0
    assert not (tmp_path / "dl").exists()
