"""Bad inputs on the component tier: each has a documented outcome (docs/reliability.md,
README "Bad input"), checked here with the daemon still running afterwards.

The rest of the bad-input table is covered where its scenario lives: non-JSON bodies,
TestEvent, non-S3 events and bad key escapes (R14), NoSuchKey (R13), a changed ETag
(R12), truncated gzip (R11), unparseable lines (R1, R14), mapping rejects (R3, and
tests/integration/test_opensearch.py on a real node), and the LMDB store corrupt, full,
read-only, or on a full disk (R17, test_process.py).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time

import pytest
import trio
from trio.testing import MockClock

from tests.reliability.corpus import Corpus, alb_key, alb_lines, custom_object, generate
from tests.reliability.harness import QUEUE, Invariants, Rig, dead_letters


def _lines(oid: int, n: int) -> bytes:
    return ("\n".join(alb_lines(oid, n)) + "\n").encode()


async def test_removed_and_other_non_creation_records_are_deleted_and_counted(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """``ObjectRemoved:*`` (and a message mixing it with a creation): the removal names
    nothing to read; a message naming no new object is deleted and counted."""
    obj = custom_object(1, alb_key(1), _lines(1, 3))
    rig.s3.upload([obj])
    removed = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectRemoved:Delete",
        "s3": {"bucket": {"name": obj.bucket}, "object": {"key": "gone.log"}},
    }
    only_removed = rig.sqs.send(QUEUE, json.dumps({"Records": [removed]}))
    from tests.reliability.corpus import notification

    mixed = json.loads(notification([obj]))
    mixed["Records"].append(removed)
    rig.sqs.send(QUEUE, json.dumps(mixed))
    check = Invariants(rig, Corpus([obj]))
    await rig.run(rig.config(), rig.queue_empty)
    check.check_all()
    assert rig.sqs.times("delete", only_removed)
    assert rig.telemetry.counters["messages_ignored"] == 1
    assert rig.telemetry.counters["records_ignored"] == 2


async def test_access_denied_keeps_the_message_until_the_redrive_takes_it(
    autojump_clock: MockClock, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """S3 403 AccessDenied: the object fails, its message is kept (never deleted),
    the redrive policy moves it to the DLQ after 3 receives; one error line per
    attempt names the key; the other objects are shipped."""
    denied = custom_object(1, alb_key(1), _lines(1, 5))
    good = generate(2, formats=["alb"], objects=2, records=(3, 5), first_oid=2)
    rig.s3.upload([denied, *good.objects])
    rig.s3.status_plan[denied.key] = [403] * 10
    rig.sqs.max_receive_count = 3
    (message,) = rig.send([denied])
    rig.send(good.objects)
    with caplog.at_level(logging.WARNING, logger="s3lb"):
        await rig.run(rig.config(visibility_timeout="30s"), rig.queue_empty)
    assert [s.message_id for s in rig.sqs.dlq] == [message]
    assert not rig.sqs.times("delete", message)
    assert {i for _, i in rig.es.docs} == good.expected_ids()
    failed = [r for r in caplog.records if r.getMessage().startswith("object failed")]
    assert len(failed) == 3 and all("AccessDenied" in str(r.__dict__) for r in failed)


async def test_an_empty_object_settles_at_once_and_its_message_is_deleted(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """A zero-byte object (plain, and gzip of nothing): done with no records, deleted."""
    plain = custom_object(1, alb_key(1), b"")
    packed = custom_object(2, alb_key(2, ".gz"), b"", compressed=True)
    rig.s3.upload([plain, packed])
    check = Invariants(rig, Corpus([plain, packed]))
    rig.send([plain, packed], per_message=2)
    await rig.run(rig.config(), rig.queue_empty)
    check.check_all()
    assert rig.es.docs == {}
    assert rig.telemetry.counters["objects_done"] == 2


async def test_a_corrupt_gzip_fails_its_object_and_the_redrive_takes_the_message(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """Garbage after a gzip header: the object fails (ObjectCorrupt) on every receive,
    its message goes to the DLQ after 3 receives, nothing of it is indexed, and an
    object sharing its message is shipped but not deleted with it."""
    corrupt = custom_object(1, alb_key(1, ".gz"), b"")
    corrupt.body = b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8
    neighbour = custom_object(2, alb_key(2), _lines(2, 4))
    rig.s3.upload([corrupt, neighbour])
    rig.sqs.max_receive_count = 3
    rig.send([corrupt, neighbour], per_message=2)
    await rig.run(rig.config(visibility_timeout="30s"), rig.queue_empty)
    assert len(rig.sqs.dlq) == 1
    assert {i for _, i in rig.es.docs} == set(neighbour.expected_docs())
    assert rig.telemetry.counters["objects_failed"] == 3


async def test_invalid_utf8_is_indexed_with_replacement_characters_not_dropped(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """Lines with invalid UTF-8 bytes (plain and gzip): each is indexed, its bad bytes
    replaced, exactly as ``s3lb parse`` makes it (I1, I3)."""

    def text(oid: int) -> bytes:
        raw = [line.encode() for line in alb_lines(oid, 6)]
        raw[2] = raw[2].replace(b"s3lbrel", b"\xff\xfe s3lbrel")
        raw[4] = raw[4] + b" \xc3\x28"
        return b"\n".join(raw) + b"\n"

    plain = custom_object(1, alb_key(1), text(1))
    packed = custom_object(2, alb_key(2, ".gz"), text(2), compressed=True)
    rig.s3.upload([plain, packed])
    check = Invariants(rig, Corpus([plain, packed]))
    rig.send([plain, packed])
    await rig.run(rig.config(), rig.queue_empty)
    check.check_all()
    assert any("\ufffd" in json.dumps(doc, ensure_ascii=False) for doc in rig.es.docs.values())


async def test_a_10_mb_line_is_dead_lettered_alone_and_the_next_lines_survive(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """A 10 MB line (plain and gzip) is longer than ``max_line_bytes``: dead-lettered
    as ``oversize`` with its first bytes, never buffered whole; the lines around it are
    indexed and the object settles (I1, I6)."""
    huge = "x" * (10 * 1024 * 1024)

    def text(oid: int) -> bytes:
        lines = alb_lines(oid, 5)
        return ("\n".join([*lines[:2], huge, *lines[2:]]) + "\n").encode()

    plain = custom_object(1, alb_key(1), text(1))
    packed = custom_object(2, alb_key(2, ".gz"), text(2), compressed=True)
    assert plain.failed_positions() == {3}
    rig.s3.chunk = 256 * 1024
    rig.s3.upload([plain, packed])
    check = Invariants(rig, Corpus([plain, packed]))
    rig.send([plain, packed])
    await rig.run(rig.config(), rig.queue_empty)
    check.check_all()
    entries = dead_letters(rig.state_dir)
    assert {(e["kind"], e["position"]) for e in entries} == {("oversize", 3)}
    assert all(len(e["raw"]) <= 1024 * 1024 for e in entries)


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("s3lb.deadletter.DeadLetter.write", no_space)


async def test_an_unparseable_line_on_a_full_disk_keeps_its_message_for_later(
    autojump_clock: MockClock, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full while a line must be dead-lettered: the record cannot be kept, so
    its object fails and the message is kept (nothing is lost; the redrive policy bounds
    the retries) while the daemon goes on shipping other objects."""
    _full_disk(monkeypatch)
    bad = custom_object(1, alb_key(1), _lines(1, 3) + b"garbage\n")
    good = custom_object(2, alb_key(2), _lines(2, 3))
    rig.s3.upload([bad, good])
    rig.sqs.max_receive_count = 2
    (kept,) = rig.send([bad])
    rig.send([good])
    await rig.run(rig.config(visibility_timeout="30s"), rig.queue_empty)
    assert [s.message_id for s in rig.sqs.dlq] == [kept]
    assert set(good.expected_docs()) <= {i for _, i in rig.es.docs}


async def test_a_cluster_reject_on_a_full_disk_does_not_stop_the_daemon(
    autojump_clock: MockClock, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full while a rejected document must be dead-lettered: the daemon stays up
    (the message is kept for later), and other objects are still shipped."""
    _full_disk(monkeypatch)
    rejected = custom_object(1, alb_key(1), _lines(1, 5))
    later = custom_object(2, alb_key(2), _lines(2, 5))
    rig.s3.upload([rejected, later])
    rig.es.item_plan = {rejected.doc_id(2): 400}
    rig.send([rejected])

    async def then_more(r: Rig) -> None:
        await trio.sleep(60)
        r.send([later])

    await rig.run(
        rig.config(visibility_timeout="30s"),
        lambda: set(later.expected_docs()) <= {i for _, i in rig.es.docs},
        during=then_more,
        limit=600,
    )


async def test_parse_failures_are_logged_a_few_times_per_object_and_all_dead_lettered(
    autojump_clock: MockClock, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A flood of unparseable lines in one object: every one is dead-lettered and
    counted, but only the first few are logged (the object's ``object done`` line has
    the count)."""
    text = b"".join(b"not a log line %d\n" % i for i in range(200)) + _lines(1, 3)
    obj = custom_object(1, alb_key(1), text)
    rig.s3.upload([obj])
    check = Invariants(rig, Corpus([obj]))
    rig.send([obj])
    with caplog.at_level(logging.INFO, logger="s3lb"):
        await rig.run(rig.config(), rig.queue_empty)
    check.check_all()
    logged = [r for r in caplog.records if r.getMessage() == "record not parsed, dead-lettered"]
    assert 0 < len(logged) <= 3
    assert rig.telemetry.counters["events_parse_failed"] == 200


async def test_stopping_with_a_full_dead_letter_disk_is_a_clean_stop(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """Issue 16.7: a failed dead-letter write left its line in a buffer, and closing the
    store at SIGTERM raised ENOSPC again: exit 1 with a traceback, no "s3lb stopped".
    The store's file of the day is /dev/full here: every write is ENOSPC."""
    directory = rig.state_dir / "dead-letter"
    directory.mkdir(parents=True)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    os.symlink("/dev/full", directory / f"dead-letter-{day}.ndjson")
    poisoned = custom_object(1, alb_key(1), _lines(1, 3) + b"garbage\n")
    rejected = custom_object(2, alb_key(2), _lines(2, 3))
    rig.s3.upload([poisoned, rejected])
    rig.es.item_plan = {rejected.doc_id(2): 400}
    rig.send([poisoned, rejected])
    telemetry = await rig.run(
        rig.config(visibility_timeout="30s"),
        lambda: (
            rig.telemetry.counters["dead_letter_errors"] > 0
            and rig.telemetry.counters["objects_failed"] > 0
        ),
        limit=600,
    )  # run_pipeline returned: the store closed without raising
    assert telemetry.counters["events_rejected"] == 0  # nothing settled without its entry
