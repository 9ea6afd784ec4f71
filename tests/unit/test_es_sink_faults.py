"""Issue 16, the sink's items: non-conforming answers, trickling proxies, persistent
413s and a full disk, on Trio's autojump clock."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from s3lb.config import ElasticsearchOutput, loads
from s3lb.deadletter import DeadLetter, entry
from s3lb.model import ObjectRef
from s3lb.sinks.elasticsearch.sink import ElasticsearchSink
from s3lb.telemetry import Telemetry
from tests.fakes.fake_es import FakeEs
from tests.unit.test_es_sink import TimedTransport, make_items, make_sink


def output(**settings: object) -> ElasticsearchOutput:
    settings = {"hosts": ["http://es.invalid:9200"], "index": "logs", **settings}
    config, _ = loads("output.elasticsearch: " + json.dumps(settings))
    assert config.output.elasticsearch is not None
    return config.output.elasticsearch


def sink_for(
    tmp_path: Path, transport: httpx.AsyncBaseTransport, **settings: object
) -> ElasticsearchSink:
    return ElasticsearchSink(
        output(**settings), Telemetry(), DeadLetter(tmp_path / "dl"), transport
    )


async def test_errors_false_over_429_items_retries_them_instead_of_acknowledging(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """16.9: a proxy answering ``errors: false`` with 429 items lost those documents."""
    fake = FakeEs(clock=trio.current_time)
    inner = fake.transport()
    answers = 0

    async def liar(request: httpx.Request) -> httpx.Response:
        nonlocal answers
        answers += 1
        if answers == 1:  # busy, but says there were no errors
            n = len(request.content.splitlines()) // 2
            items = [{"create": {"status": 429, "error": {"type": "es_rejected"}}}] * n
            return httpx.Response(200, json={"errors": False, "items": items})
        return await inner.handle_async_request(request)

    sink = sink_for(tmp_path, httpx.MockTransport(liar))
    tracker, items = make_items(5)
    await sink.deliver(items)
    assert answers == 2
    assert tracker.counts == {"indexed": 5} and len(fake.docs) == 5


class Trickle(httpx.AsyncByteStream):
    """A body that never ends: one byte every 2 s."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            await trio.sleep(2)
            yield b" "


class TrickleFirstHost(httpx.AsyncBaseTransport):
    """``slow.invalid`` answers headers, then trickles; other hosts reach the fake."""

    def __init__(self, fake: FakeEs) -> None:
        self.inner = fake.transport()
        self.hosts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        if request.url.host == "slow.invalid":
            return httpx.Response(200, stream=Trickle())
        return await self.inner.handle_async_request(request)


async def test_a_trickling_host_is_cut_off_after_timeout_and_the_next_host_gets_the_request(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """16.3: httpx's timeouts are per read: a byte every 2 s held a worker forever."""
    fake = FakeEs(clock=trio.current_time)
    transport = TrickleFirstHost(fake)
    sink = sink_for(
        tmp_path,
        transport,
        hosts=["http://slow.invalid:9200", "http://up.invalid:9200"],
        timeout="30s",
    )
    tracker, items = make_items(4)
    start = trio.current_time()
    with trio.move_on_after(3600):
        await sink.deliver(items)
    assert tracker.counts == {"indexed": 4}
    assert transport.hosts == ["slow.invalid", "up.invalid"]
    assert 30 <= trio.current_time() - start < 60
    assert any("timed out" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert sink.telemetry.counters["cluster_request_timeouts"] == 1


async def test_a_single_trickling_host_is_an_outage_retried_with_backoff(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    slow = True

    async def handler(request: httpx.Request) -> httpx.Response:
        if slow:
            return httpx.Response(200, stream=Trickle())
        return await fake.transport().handle_async_request(request)

    sink = sink_for(tmp_path, httpx.MockTransport(handler), timeout="10s")
    tracker, items = make_items(3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.deliver, items)
        await trio.sleep(300)
        assert tracker.settled == 0
        assert sink.telemetry.counters["cluster_request_timeouts"] > 3
        slow = False
    assert tracker.counts == {"indexed": 3}


async def test_a_persistent_413_for_small_documents_is_an_outage_logged_once_a_minute(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """16.11: a proxy refusing every body dead-lettered everything, a warning each."""
    fake = FakeEs(clock=trio.current_time, max_content_length=10)
    sink, transport = make_sink(fake, tmp_path, **{"backoff.init": "100ms", "backoff.max": "1s"})
    tracker, items = make_items(200)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.deliver, items)
        await trio.sleep(600)
        assert tracker.settled == 0 and not (tmp_path / "dl").exists()
        assert len(transport.times) > 500  # retried all along
        fake.max_content_length = None
    assert tracker.counts == {"indexed": 200} and len(fake.docs) == 200
    too_large = [r for r in caplog.records if "too large" in r.getMessage()]
    assert 5 <= len(too_large) <= 11  # 600 s of 413s: one line a minute


async def test_a_proxy_refusing_every_body_from_the_start_dead_letters_nothing(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Log-sized documents (2 KB) behind a proxy whose limit is zero, from the first
    request on: an outage, not thousands of dead letters."""
    fake = FakeEs(clock=trio.current_time, max_content_length=0)
    sink, _ = make_sink(fake, tmp_path)
    tracker, items = make_items(50)
    items = [dataclasses.replace(i, source=b'{"s":"%s"}' % (b"x" * 2000)) for i in items]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.deliver, items)
        await trio.sleep(300)
        assert tracker.settled == 0 and not (tmp_path / "dl").exists()
        fake.max_content_length = None
    assert tracker.counts == {"indexed": 50}


async def test_a_lone_document_smaller_than_what_the_cluster_took_is_not_dead_lettered(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    sink, _ = make_sink(fake, tmp_path)
    tracker, items = make_items(30)
    await sink.deliver(items[:20])  # a body of 20 documents got in
    fake.max_content_length = 50  # the proxy in front is misconfigured
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.deliver, items[20:])
        await trio.sleep(120)
        assert tracker.settled == 20 and not (tmp_path / "dl").exists()
        fake.max_content_length = None
    assert tracker.counts == {"indexed": 30}


def full_disk_store(tmp_path: Path) -> DeadLetter:
    """A dead-letter store whose file of the day is /dev/full: every write is ENOSPC."""
    directory = tmp_path / "dl"
    directory.mkdir()
    day = time.strftime("%Y-%m-%d", time.gmtime())
    os.symlink("/dev/full", directory / f"dead-letter-{day}.ndjson")
    return DeadLetter(directory)


async def test_on_a_full_disk_a_write_fails_whole_and_closing_the_store_does_not_raise(
    tmp_path: Path,
) -> None:
    """16.7: close() re-raised ENOSPC from a buffered write (a traceback at SIGTERM)."""
    store = full_disk_store(tmp_path)
    ref = ObjectRef("b", "k", "e")
    with pytest.raises(OSError):
        await store.write([entry("parse_failed", "bad", ref, 1, raw="x")])
    store.close()  # nothing buffered is left to fail
    store.close()


async def test_rejects_on_a_full_disk_stay_unsettled_and_the_sink_shuts_down_cleanly(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    sink = ElasticsearchSink(output(), Telemetry(), full_disk_store(tmp_path), TimedTransport(fake))
    tracker, items = make_items(3)
    fake.item_plan = {items[1].doc_id: 400}
    await sink.deliver(items)
    assert tracker.counts == {"indexed": 2} and tracker.settled == 2
    assert sink.telemetry.counters["dead_letter_errors"] == 1
    await sink.aclose()
    sink.dead_letter.close()


async def test_a_dead_letter_write_waiting_on_the_disk_does_not_stall_the_event_loop(
    tmp_path: Path,
) -> None:
    """The write waits on the file's lock (a replay claiming it) in a thread: other
    tasks keep running meanwhile, and the entry is in the file when write() returns."""
    store = DeadLetter(tmp_path / "dl")
    ref = ObjectRef("b", "k", "e")
    await store.write([entry("parse_failed", "first", ref, 1, raw="a")])
    (path,) = (tmp_path / "dl").glob("*.ndjson")
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    written = trio.Event()
    ticks = 0

    async def write() -> None:
        await store.write([entry("parse_failed", "second", ref, 2, raw="b")])
        written.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        while ticks < 50:
            await trio.sleep(0.001)
            ticks += 1
        assert not written.is_set()  # still waiting on the lock, yet the loop ran
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    store.close()
    assert [json.loads(line)["reason"] for line in path.read_text().splitlines()] == [
        "first",
        "second",
    ]
