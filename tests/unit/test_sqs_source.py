"""The SQS source on the autojump clock: heartbeats keep received messages invisible
(queued ones too), max_hold hands a stuck message back to the queue, deletes wait for
every object."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from s3lb.aws.sqs import Message
from s3lb.deadletter import DeadLetter
from s3lb.sources.sqs import QueueInput, SqsSource
from s3lb.sources.task import InputRuntime, ObjectTask
from s3lb.telemetry import Telemetry
from tests.fakes.fake_sqs import FakeSqs

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/logs"
INPUT = InputRuntime("test", "alb", {}, None, {})


def notification(*keys: str) -> str:
    records = [
        {
            "eventSource": "aws:s3",
            "eventVersion": "2.1",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": key, "eTag": "e"}},
        }
        for key in keys
    ]
    return json.dumps({"Records": records})


async def run_source(
    sqs: FakeSqs, seconds: float, max_hold: float = 3600
) -> tuple[SqsSource, list[ObjectTask]]:
    """Poll for ``seconds`` virtual seconds with nobody finishing any object."""
    source = SqsSource(sqs, Telemetry(), 100, 20, max_hold=max_hold)  # type: ignore[arg-type]
    tasks: list[ObjectTask] = []
    send, receive = trio.open_memory_channel[ObjectTask](1000)
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(source.poll, QueueInput(URL, "us-east-1", INPUT, 1.0), send)
            nursery.start_soon(source.keep_visible)
            async for task in receive:
                tasks.append(task)
    return source, tasks


def extensions(sqs: FakeSqs, message_id: str) -> list[tuple[float, float]]:
    return [(t, v) for t, a, m, v in sqs.timeline if a == "visibility" and m == message_id]


async def test_heartbeats_keep_a_slow_message_invisible(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sqs = FakeSqs(visibility=30)
    message_id = sqs.send(URL, notification("slow.log"))
    _, tasks = await run_source(sqs, 20 * 60)
    assert len(tasks) == 1
    assert [s.receive_count for s in sqs.stored(URL)] == [1]  # never redelivered
    beats = extensions(sqs, message_id)
    assert len(beats) >= (20 * 60) / 15 - 2
    assert all(v == 30 for _, v in beats)
    times = [t for t, _ in beats]
    assert max(b - a for a, b in itertools.pairwise(times)) <= 15 + 7.5 + 1e-6


async def test_queued_messages_are_heartbeated_too(autojump_clock: trio.testing.MockClock) -> None:
    sqs = FakeSqs(visibility=30)
    ids = [sqs.send(URL, notification(f"k{i}.log")) for i in range(10)]
    await run_source(sqs, 5 * 60)
    assert [s.receive_count for s in sqs.stored(URL)] == [1] * 10
    assert all(len(extensions(sqs, i)) >= 15 for i in ids)


async def test_max_hold_releases_a_stuck_message_to_the_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sqs = FakeSqs(visibility=30)
    message_id = sqs.send(URL, notification("stuck.log"))
    _, tasks = await run_source(sqs, 11 * 60, max_hold=10 * 60)
    beats = extensions(sqs, message_id)
    released = [t for t, v in beats if v == 0]
    assert len(released) == 1 and 10 * 60 <= released[0] <= 10 * 60 + 15
    # Released, it is received again: the queue's redrive count moves on.
    assert sqs.stored(URL)[0].receive_count == 2
    # The object is still being read (nobody finished it): the redelivery follows that
    # read instead of starting a second one.
    assert len(tasks) == 1


async def test_a_message_is_deleted_only_when_all_its_objects_are_done(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sqs = FakeSqs(visibility=30)
    sqs.send(URL, notification("a.log", "b.log"))
    source = SqsSource(sqs, Telemetry(), 100, 20)  # type: ignore[arg-type]
    send, receive = trio.open_memory_channel[ObjectTask](10)
    finished = source.open_finish_channel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(source.poll, QueueInput(URL, "us-east-1", INPUT, 1.0), send)
        nursery.start_soon(source.finish, finished)
        nursery.start_soon(source.keep_visible)
        first, second = await receive.receive(), await receive.receive()
        first.tracker.finish_reading()
        await trio.sleep(60)
        assert len(sqs.stored(URL)) == 1  # one object is still open
        second.tracker.finish_reading()
        await trio.sleep(1)
        assert sqs.stored(URL) == []
        nursery.cancel_scope.cancel()


class InlineDeadLetter(DeadLetter):
    """The real store, written on the event loop: a worker thread would let the
    autojump clock race to the test's deadline while it writes."""

    async def write(self, lines: Sequence[bytes]) -> None:
        await trio.lowlevel.checkpoint()
        self.append(lines)


def _with_bad_record(*keys: str) -> str:
    body = json.loads(notification(*keys))
    body["Records"].insert(1, {**body["Records"][0], "s3": {"bucket": {"name": "b"}}})
    return json.dumps(body)


async def test_a_bad_record_is_dead_lettered_and_the_good_objects_are_delivered(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    sqs = FakeSqs(visibility=30)
    message_id = sqs.send(URL, _with_bad_record("a.log", "b.log"))
    telemetry = Telemetry()
    dead = InlineDeadLetter(tmp_path / "dead-letter")
    source = SqsSource(sqs, telemetry, 100, 20, dead_letter=dead)  # type: ignore[arg-type]
    send, receive = trio.open_memory_channel[ObjectTask](10)
    finished = source.open_finish_channel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(source.poll, QueueInput(URL, "us-east-1", INPUT, 1.0), send)
        nursery.start_soon(source.finish, finished)
        with trio.fail_after(60):
            first, second = await receive.receive(), await receive.receive()
        assert [first.ref.key, second.ref.key] == ["a.log", "b.log"]
        (entry,) = [
            json.loads(line)
            for path in (tmp_path / "dead-letter").iterdir()
            for line in path.read_text().splitlines()
        ]
        assert entry["kind"] == "notification"
        assert (entry["queue"], entry["message_id"], entry["record"]) == (URL, message_id, 1)
        assert "Records[1].s3.object" in entry["reason"]
        assert json.loads(entry["raw"])["s3"] == {"bucket": {"name": "b"}}
        first.tracker.finish_reading()
        second.tracker.finish_reading()
        await trio.sleep(1)
        assert sqs.stored(URL) == []  # deleted once its good objects are done
        nursery.cancel_scope.cancel()
    dead.close()
    assert telemetry.counters["records_undecodable"] == 1
    assert telemetry.counters["messages_undecodable"] == 0


async def test_a_bad_record_that_cannot_be_dead_lettered_leaves_its_message_for_redrive(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    sqs = FakeSqs(visibility=30)
    sqs.send(URL, _with_bad_record("a.log"))
    sqs.send(URL, notification("c.log"))
    (tmp_path / "dead-letter").write_text("a file where the directory should be")
    telemetry = Telemetry()
    source = SqsSource(  # type: ignore[arg-type]
        sqs, telemetry, 100, 20, dead_letter=InlineDeadLetter(tmp_path / "dead-letter")
    )
    send, receive = trio.open_memory_channel[ObjectTask](10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(source.poll, QueueInput(URL, "us-east-1", INPUT, 1.0), send)
        with trio.fail_after(60):
            task = await receive.receive()
        nursery.cancel_scope.cancel()
    assert task.ref.key == "c.log"  # the rest of the batch goes on
    assert telemetry.counters["messages_undecodable"] == 1
    assert len(sqs.stored(URL)) == 2  # nothing deleted


async def test_an_object_notified_again_while_being_read_is_read_once_and_both_messages_go(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Dedupe in flight: the same version (bucket, key, ETag) in two messages and twice
    in a third gives one task; when it is done, all three messages are deleted. Another
    version of the key, or the same one once finished, is read again."""
    sqs = FakeSqs(visibility=30)
    sqs.send(URL, notification("a.log"))
    sqs.send(URL, notification("a.log", "b.log", "a.log"))
    telemetry = Telemetry()
    source = SqsSource(sqs, telemetry, 100, 20)  # type: ignore[arg-type]
    send, receive = trio.open_memory_channel[ObjectTask](10)
    finished = source.open_finish_channel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(source.poll, QueueInput(URL, "us-east-1", INPUT, 1.0), send)
        nursery.start_soon(source.finish, finished)
        with trio.fail_after(60):
            a, b = await receive.receive(), await receive.receive()
        await trio.sleep(5)
        assert [a.ref.key, b.ref.key] == ["a.log", "b.log"]
        assert receive.statistics().current_buffer_used == 0  # a.log is read once
        assert telemetry.counters["objects_deduplicated"] == 2
        a.tracker.finish_reading()
        await trio.sleep(1)
        assert len(sqs.stored(URL)) == 1  # the second message still waits for b.log
        b.tracker.finish_reading()
        await trio.sleep(1)
        assert sqs.stored(URL) == []
        other = json.loads(notification("a.log"))
        other["Records"][0]["s3"]["object"]["eTag"] = "e2"  # another version
        sqs.send(URL, json.dumps(other))
        sqs.send(URL, notification("a.log"))  # the first version again, read again
        with trio.fail_after(60):
            again = [await receive.receive(), await receive.receive()]
        assert sorted(t.ref.etag for t in again) == ["e", "e2"]
        nursery.cancel_scope.cancel()
    assert telemetry.counters["objects_done"] == 2  # followers are not counted twice


async def test_a_follower_fails_with_the_read_it_follows_and_its_message_is_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sqs = FakeSqs(visibility=30)
    sqs.send(URL, notification("a.log"))
    sqs.send(URL, notification("a.log"))
    telemetry = Telemetry()
    source = SqsSource(sqs, telemetry, 100, 20)  # type: ignore[arg-type]
    send, receive = trio.open_memory_channel[ObjectTask](10)
    finished = source.open_finish_channel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(source.poll, QueueInput(URL, "us-east-1", INPUT, 1.0), send)
        nursery.start_soon(source.finish, finished)
        with trio.fail_after(60):
            task = await receive.receive()
        await trio.sleep(1)
        task.tracker.fail("S3 GET failed: SlowDown")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert telemetry.counters["messages_kept"] == 2
    assert len(sqs.stored(URL)) == 2


class CountingSqs(FakeSqs):
    """Counts DeleteMessageBatch calls and their sizes."""

    def __init__(self) -> None:
        super().__init__(visibility=30)
        self.delete_calls: list[int] = []

    async def delete_batch(self, messages: Sequence[Message]) -> list[tuple[Message, str]]:
        self.delete_calls.append(len(messages))
        return await super().delete_batch(messages)


async def test_messages_finished_together_go_in_batches_and_a_refused_one_is_kept(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """25 messages finished at once: 3 DeleteMessageBatch calls (≤ 10 each). One whose
    receipt handle went stale (received again elsewhere) is refused by SQS: that is
    logged, the message stays for redelivery, the other 24 are deleted."""
    sqs = CountingSqs()
    for i in range(25):
        sqs.send(URL, notification(f"k{i}.log"))
    source = SqsSource(sqs, Telemetry(), 100, 20)  # type: ignore[arg-type]
    send, receive = trio.open_memory_channel[ObjectTask](100)
    finished = source.open_finish_channel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(source.poll, QueueInput(URL, "us-east-1", INPUT, 1.0), send)
        nursery.start_soon(source.finish, finished)
        tasks = [await receive.receive() for _ in range(25)]
        stale = sqs.stored(URL)[3]
        stale.handle += "/again"  # as if another consumer had received it since
        for task in tasks:
            task.tracker.finish_reading()
        await trio.sleep(1)
        assert [s.message_id for s in sqs.stored(URL)] == [stale.message_id]
        assert sorted(sqs.delete_calls) == [5, 10, 10]
        nursery.cancel_scope.cancel()
    refused = [r for r in caplog.records if "delete refused" in r.getMessage()]
    assert len(refused) == 1
    assert source.telemetry.counters["messages_deleted"] == 24
