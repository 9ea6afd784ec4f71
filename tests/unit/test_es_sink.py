"""The bulk sink on Trio's autojump clock, against the fake cluster's in-process
transport: outages, per-item outcomes and lost responses, in virtual time."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from pathlib import Path

import httpx
import pytest
import trio

from s3lb.acks import BulkItem, ObjectTracker
from s3lb.config import loads
from s3lb.deadletter import DeadLetter
from s3lb.model import ObjectRef, document_id
from s3lb.sinks.elasticsearch.sink import ElasticsearchSink, dead_letter_entry_id
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


def dead_letters(tmp_path: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted((tmp_path / "dl").glob("*.ndjson"))
        for line in path.read_text().splitlines()
    ]


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def test_per_item_429s_are_retried_alone_with_jittered_exponential_backoff(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    tracker, items = make_items(4)
    fake.item_plan = {items[2].doc_id: [429] * 5}
    sink, transport = make_sink(fake, tmp_path, **{"backoff.init": "1s", "backoff.max": "8s"})
    await sink.deliver(items)
    assert tracker.counts == {"indexed": 4}
    assert [r.n_items for r in fake.requests] == [4, 1, 1, 1, 1, 1]
    assert sink.telemetry.histograms()["bulk_latency_seconds"].count == 6  # each answer timed
    for attempt, gap in enumerate(gaps(transport.times)):
        cap = min(8.0, 2.0**attempt)
        assert cap / 2 <= gap <= cap + 1e-6, (attempt, gap)
    assert len(fake.docs) == 4


async def test_whole_request_429_and_resets_acknowledge_nothing_until_the_cluster_is_back(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    sink, _ = make_sink(fake, tmp_path)
    tracker, items = make_items(6)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.deliver, items)
        for mode in ("429", "reset", "503"):
            fake.down = mode
            await trio.sleep(30)
            assert tracker.settled == 0 and fake.docs == {}
        fake.down = None
    assert tracker.counts == {"indexed": 6}
    assert sink.telemetry.counters["bulk_failures"] > 3


class RoutingTransport(httpx.AsyncBaseTransport):
    """Refuses connections to ``down.invalid``; other hosts reach the fake."""

    def __init__(self, fake: FakeEs) -> None:
        self.inner = fake.transport()
        self.hosts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        if request.url.host == "down.invalid":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self.inner.handle_async_request(request)


async def test_a_refused_connection_fails_over_to_the_next_host_at_once(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    config, _ = loads(
        "output.elasticsearch: "
        + json.dumps({"hosts": ["http://down.invalid:9200", "http://up.invalid:9200"]})
    )
    assert config.output.elasticsearch is not None
    transport = RoutingTransport(fake)
    sink = ElasticsearchSink(
        config.output.elasticsearch, Telemetry(), DeadLetter(tmp_path / "dl"), transport
    )
    tracker, items = make_items(3)
    start = trio.current_time()
    await sink.deliver(items)
    await sink.deliver(make_items(2)[1])
    assert trio.current_time() == start  # no backoff: the second host answered
    assert transport.hosts == ["down.invalid", "up.invalid", "up.invalid"]
    assert tracker.counts == {"indexed": 3}


async def test_a_413_splits_the_request_and_a_document_too_large_alone_is_dead_lettered(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    limit = 600
    fake = FakeEs(clock=trio.current_time, max_content_length=limit)
    sink, _ = make_sink(fake, tmp_path)
    finished: list[ObjectTracker] = []
    tracker = ObjectTracker(REF, finished.append)
    sizes = [50, 100, 700, 80, 120, 90, 60, 200, 40, 30]  # the 700-byte one never fits
    items = [
        BulkItem("logs", document_id(REF, p), b'{"s":"%s"}' % (b"x" * n), tracker, p)
        for p, n in enumerate(sizes, start=1)
    ]
    tracker.add(len(items))
    tracker.finish_reading()
    await sink.deliver(items)
    sink.dead_letter.close()
    assert tracker.status == "done"
    assert tracker.counts == {"indexed": 9, "rejected": 1}
    assert set(fake.docs) == {("logs", i.doc_id) for i in items if i.position != 3}
    (entry,) = dead_letters(tmp_path)
    assert entry["_id"] == items[2].doc_id and str(entry["reason"]).startswith("HTTP 413")
    assert sink.telemetry.counters["bulk_too_large"] >= 2
    assert fake.item_statuses == {201: 9}  # each document was applied exactly once


async def test_no_body_is_above_bulk_max_bytes_and_a_larger_document_is_never_sent(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    sink, _ = make_sink(fake, tmp_path, bulk_max_bytes=2048)
    finished: list[ObjectTracker] = []
    tracker = ObjectTracker(REF, finished.append)
    items = [
        BulkItem("logs", document_id(REF, p), b'{"s":"%s"}' % (b"y" * (300 * (p % 4))), tracker, p)
        for p in range(1, 41)
    ]
    items.append(BulkItem("logs", "huge", b'{"s":"%s"}' % (b"z" * 4000), tracker, 41))
    tracker.add(len(items))
    tracker.finish_reading()
    await sink.deliver(items)
    sink.dead_letter.close()
    assert tracker.counts == {"indexed": 40, "rejected": 1}
    assert max(r.nbytes for r in fake.requests) <= 2048
    assert ("logs", "huge") not in fake.docs
    (entry,) = dead_letters(tmp_path)
    assert entry["_id"] == "huge" and "bulk_max_bytes" in str(entry["reason"])


class CapturingTransport(httpx.AsyncBaseTransport):
    def __init__(self, fake: FakeEs) -> None:
        self.inner = fake.transport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


async def test_bodies_are_gzipped_and_the_pipeline_is_named_when_configured(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    config, _ = loads(
        "output.elasticsearch: "
        + json.dumps({"hosts": ["http://es.invalid"], "compression_level": 6, "pipeline": "a b"})
    )
    assert config.output.elasticsearch is not None
    transport = CapturingTransport(fake)
    sink = ElasticsearchSink(
        config.output.elasticsearch, Telemetry(), DeadLetter(tmp_path / "dl"), transport
    )
    tracker, items = make_items(50)
    await sink.deliver(items)
    assert tracker.counts == {"indexed": 50}
    (request,) = transport.requests
    assert request.headers["content-encoding"] == "gzip"
    assert request.url.params["pipeline"] == "a b"
    assert len(request.content) < fake.requests[0].nbytes / 2


async def test_rejects_go_to_the_dead_letter_index_and_to_the_files_if_it_refuses_them(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    sink, _ = make_sink(fake, tmp_path, dead_letter_index="s3lb-dead-letter")
    tracker, items = make_items(4)
    poison = {items[1].doc_id, items[3].doc_id}
    refused = dead_letter_entry_id("logs", items[3].doc_id)
    # The items are refused by a mapping; the dead-letter index is busy once, then takes
    # one entry and refuses the other.
    fake.item_plan = {**dict.fromkeys(poison, 400), refused: [429, 400]}
    await sink.deliver(items)
    sink.dead_letter.close()
    assert tracker.counts == {"indexed": 2, "rejected": 2}
    kept = fake.docs[("s3lb-dead-letter", dead_letter_entry_id("logs", items[1].doc_id))]
    assert kept["id"] == items[1].doc_id and kept["index"] == "logs"
    assert kept["bucket"] == "bucket" and kept["key"] == "key.log" and kept["position"] == 2
    assert str(kept["reason"]).startswith("HTTP 400 mapper_parsing_exception")
    assert json.loads(str(kept["document"])) == {"n": 2}
    (entry,) = dead_letters(tmp_path)
    assert entry["_id"] == items[3].doc_id


@pytest.mark.parametrize("seed", range(6))
async def test_under_any_mix_of_faults_every_event_is_indexed_once_or_dead_lettered(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    fake = FakeEs(clock=trio.current_time, max_content_length=6000)
    sink, _ = make_sink(
        fake,
        tmp_path,
        worker=3,
        bulk_max_size=40,
        bulk_max_bytes=8000,
        flush_interval="100ms",
        **{"backoff.init": "100ms", "backoff.max": "5s"},
    )
    finished: list[ObjectTracker] = []
    trackers = [ObjectTracker(ObjectRef("b", f"k{n}", "e"), finished.append) for n in range(5)]
    items = []
    for p in range(1, 301):
        tracker = trackers[p % 5]
        # The first requests are bound to exceed the cluster's limit (a 413).
        size = 900 if p <= 17 else rng.choice([10, 50, 200, 900])
        items.append(
            BulkItem("logs", document_id(tracker.ref, p), b'{"p":"%s"}' % (b"v" * size), tracker, p)
        )
    poison = {item.doc_id for item in rng.sample(items, 12)}

    def plan(doc_id: str, position: int) -> int | None:
        if doc_id in poison:
            return 400  # a document the mapping refuses, every time
        if fault_window.is_set() or (calm and position < 3):
            return None  # faults are over, or the lost response must carry applied items
        return rng.choice([None, None, None, 429, 503, 500])

    fault_window = trio.Event()  # set: faults are over
    calm = False
    fake.item_plan = plan

    async def faults() -> None:
        # Each fault happens at least once: an outage, then a response lost after the
        # items were applied; then a random mix.
        fake.down = "503"
        await trio.sleep(1)
        fake.down = None
        nonlocal calm
        calm = True
        fake.apply_then_drop = 1
        while fake.apply_then_drop:
            await trio.sleep(0.1)
        calm = False
        for _ in range(25):
            fake.down = rng.choice([None, None, "503", "429", "reset"])
            if rng.random() < 0.3:
                fake.apply_then_drop = 1
            await trio.sleep(rng.uniform(0.1, 3))
        fake.down = None
        fake.apply_then_drop = 0
        fault_window.set()

    send, receive = trio.open_memory_channel[list[BulkItem]](4)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(faults)
        nursery.start_soon(sink.run, receive)
        async with send:
            for start in range(0, len(items), 17):
                chunk = items[start : start + 17]
                for item in chunk:
                    item.tracker.add(1)
                await send.send(chunk)
        for tracker in trackers:
            tracker.finish_reading()
    sink.dead_letter.close()

    assert len(finished) == 5 and all(t.status == "done" for t in trackers)
    dead = {str(entry["_id"]) for entry in dead_letters(tmp_path)}
    docs = {doc_id for _, doc_id in fake.docs}
    ids = {item.doc_id for item in items}
    assert dead == poison  # rejected: dead-lettered, never indexed
    assert docs == ids - poison  # everything else indexed (once: one key per _id)
    assert len(fake.docs) == len(docs)
    total = Counter[str]()
    for tracker in trackers:
        total.update(tracker.counts)
    assert total["rejected"] == len(poison)
    assert total["indexed"] + total["duplicate"] == len(ids) - len(poison)
    assert max(r.nbytes for r in fake.requests) <= 8000
    assert fake.internal_errors == []
    # The run proves something only because each fault path was taken.
    counters = sink.telemetry.counters
    assert total["duplicate"] > 0 and counters["bulk_too_large"] > 0
    assert counters["bulk_item_retries"] > 0 and counters["bulk_failures"] > 0


async def test_an_outage_of_more_than_1024_attempts_backs_off_and_then_delivers(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Issue 16.2: with backoff.init 1ms, attempt 1024 came after 2 s and killed the sink."""
    fake = FakeEs(clock=trio.current_time)
    fake.down = "401"
    sink, transport = make_sink(fake, tmp_path, **{"backoff.init": "1ms", "backoff.max": "10ms"})
    tracker, items = make_items(10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.deliver, items)
        while len(transport.times) < 1500:
            await trio.sleep(1)
        assert tracker.settled == 0
        fake.down = None
        await trio.sleep(1)
    assert tracker.settled == 10 and len(fake.docs) == 10
