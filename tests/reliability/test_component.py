"""Component tier (T1) of RELIABILITY.md: the real pipeline (``run_pipeline``) against
fakes with fault knobs, on trio's autojump clock. Every scenario ends with a set
comparison against the corpus oracle (see ``harness.Invariants``)."""

from __future__ import annotations

import gzip
import itertools
import zlib

import pytest
import trio
from trio.testing import MockClock

from s3lb.sinks.elasticsearch.indexes import IndexNamer
from tests.reliability.corpus import (
    Corpus,
    CorpusObject,
    alb_key,
    alb_lines,
    custom_object,
    generate,
)
from tests.reliability.harness import QUEUE, Invariants, Rig, dead_letters


async def test_r1_a_mixed_corpus_is_indexed_exactly_once_and_every_message_deleted(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R1 (I1–I4, I6): every format, gzip and plain, multi-object and SNS-wrapped
    messages, keys with spaces, ``+``, ``=`` and non-ASCII, unparseable lines and an
    empty object: each expected id once, bodies equal the oracle, deletes after acks and
    done marks, per-object accounting exact, the empty object settles."""
    corpus = generate(1, records=(1, 30), bad_line_ratio=0.1, empty=True)
    assert any(" " in o.key and "+" in o.key and "ü" in o.key for o in corpus.objects)
    rig.s3.upload(corpus)
    check = Invariants(rig, corpus)
    rig.send(corpus.objects[:4], per_message=2)
    rig.send(corpus.objects[4:8], per_message=1, sns=True)
    rig.send(corpus.objects[8:], per_message=3)
    await rig.run(rig.config(), rig.queue_empty)
    check.check_all()
    empty = corpus.objects[-1]
    assert rig.store.states[(empty.bucket, empty.key, empty.etag)].status == "done"


async def test_r2_a_whole_request_429_outage_deletes_nothing_and_backs_off_to_the_cap(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R2 (I1, I2, I4, I8): 200 objects while the cluster answers 429 to every request
    for 90 virtual seconds: no delete during the outage, retries follow the jittered
    exponential schedule up to its cap, then everything arrives exactly once."""
    corpus = generate(2, formats=["alb", "elb", "vpcflow"], objects=200, records=(1, 5))
    rig.s3.upload(corpus)
    check = Invariants(rig, corpus)
    rig.send(corpus.objects)
    rig.es.down = "429"

    async def outage(r: Rig) -> None:
        await trio.sleep(90)
        r.es.down = None

    config = rig.config(es_worker=1, es_backoff__init="1s", es_backoff__max="16s")
    await rig.run(config, rig.queue_empty, during=outage)
    check.check_all()
    check.check_i8(bulk_max_bytes=config.output.elasticsearch.bulk_max_bytes, max_inflight=20)
    assert min(rig.sqs.times("delete")) >= 90
    failed = [t for t in rig.es_transport.times if t < 90]
    assert len(failed) >= 6
    for attempt, gap in enumerate(b - a for a, b in itertools.pairwise(failed)):
        cap = min(16.0, 2.0**attempt)
        assert cap / 2 <= gap <= cap + 1e-6, (attempt, gap)
    assert max(b - a for a, b in itertools.pairwise(failed)) > 8  # the cap was reached


def _index_of(doc: dict[str, object]) -> str:
    return IndexNamer("rel-%{+yyyy.MM.dd}")(doc)


async def test_r3_a_bulk_mixing_item_outcomes_resends_only_the_retryable_items(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R3 (I6 exact): items answered 201, 429, 409, 400 and 503 in one bulk request:
    only the 429 and 503 items are sent again, the 409 counts as delivered, the 400 is
    dead-lettered with its reason, and the object settles with exact counts."""
    obj = custom_object(1, alb_key(1), ("\n".join(alb_lines(1, 5)) + "\n").encode())
    rig.s3.upload([obj])
    check = Invariants(rig, Corpus([obj]), rejected={1: {4}})
    third = obj.records[2]
    assert third.doc is not None
    rig.es.put_doc(_index_of(third.doc), obj.doc_id(3), third.doc)  # already there: 409
    rig.es.item_plan = {obj.doc_id(2): 429, obj.doc_id(4): 400, obj.doc_id(5): 503}
    rig.send([obj])
    await rig.run(rig.config(), rig.queue_empty)
    check.check_all()
    bulks = [ids for ids in rig.es_transport.ids if ids]
    assert bulks == [[obj.doc_id(p) for p in range(1, 6)], [obj.doc_id(2), obj.doc_id(5)]]
    state = rig.store.states[(obj.bucket, obj.key, obj.etag)]
    assert (state.records.indexed, state.records.duplicate, state.records.rejected) == (3, 1, 1)
    (entry,) = dead_letters(rig.state_dir)
    assert entry["_id"] == obj.doc_id(4)
    assert entry["reason"].startswith("HTTP 400 mapper_parsing_exception")


async def test_r4_a_lost_bulk_response_is_resent_and_absorbed_as_duplicates(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R4 (I2, I4): the cluster applies a bulk request and drops the answer; the
    resend gets 409 for every item, each id holds exactly one document, and the
    message is deleted after the acks."""
    corpus = generate(4, formats=["alb"], objects=3, records=(10, 20))
    rig.s3.upload(corpus)
    check = Invariants(rig, corpus)
    rig.es.apply_then_drop = 1
    rig.send(corpus.objects, per_message=3)
    await rig.run(rig.config(es_worker=1, es_bulk_max_size=500), rig.queue_empty)
    check.check_all()
    dropped = rig.es.requests[0].n_items
    assert dropped > 0 and rig.es.item_statuses[409] == dropped
    assert rig.telemetry.counters["events_duplicate"] == dropped


async def test_r5_large_records_are_split_under_413_and_an_oversize_one_rejected_alone(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R5 (I6, I8): big records, ``bulk_max_bytes`` 20 kB and a cluster limit of 12 kB:
    requests answered 413 are split; a record above the cluster limit is dead-lettered
    alone (413), one above ``bulk_max_bytes`` is never sent; no body exceeds the limit."""
    lines = alb_lines(1, 30, pad=0)
    pads = [1500, 3000, 4000, 800, 2500] * 6
    lines = [alb_lines(1, 30, pad=p)[i] for i, p in enumerate(pads)]
    lines[7] = alb_lines(1, 8, pad=15_000)[7]  # fits a request, not the cluster: 413 alone
    lines[20] = alb_lines(1, 21, pad=30_000)[20]  # above bulk_max_bytes: never sent
    obj = custom_object(1, alb_key(1), ("\n".join(lines) + "\n").encode())
    rig.s3.upload([obj])
    check = Invariants(rig, Corpus([obj]), rejected={1: {8, 21}})
    rig.es.max_content_length = 12_000
    rig.send([obj])
    config = rig.config(es_bulk_max_bytes=20_000)
    await rig.run(config, rig.queue_empty)
    check.check_all()
    check.check_i8(bulk_max_bytes=20_000, max_inflight=20)
    assert rig.telemetry.counters["bulk_too_large"] >= 2
    reasons = {e["position"]: e["reason"] for e in dead_letters(rig.state_dir)}
    assert reasons[8].startswith("HTTP 413") and "bulk_max_bytes" in reasons[21]
    assert obj.doc_id(21) not in {i for ids in rig.es_transport.ids for i in ids}


async def test_r6_a_sink_outage_longer_than_the_visibility_timeout_is_bridged_by_heartbeats(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R6 (I1, I2, I7, I8): the cluster is down for 10 virtual minutes with a 30 s
    visibility timeout: every in-flight message is extended at most every 15 s (plus
    the heartbeat tick), none is received twice, none deleted; the reader is held by
    backpressure; after recovery the backlog drains and a fresh object round-trips."""
    corpus = generate(6, formats=["alb", "cloudfront"], objects=30, records=(5, 40))
    fresh = generate(66, formats=["alb"], objects=1, first_oid=100)
    rig.s3.upload(corpus)
    rig.s3.upload(fresh)
    check = Invariants(rig, Corpus(corpus.objects + fresh.objects))
    rig.send(corpus.objects)
    rig.es.down = "503"
    recovered: dict[str, float] = {}

    async def outage(r: Rig) -> None:
        await trio.sleep(600)
        assert r.sqs.times("delete") == []
        assert r.telemetry.counters["events_indexed"] == 0
        r.es.down = None
        while not r.queue_empty():
            await trio.sleep(1)
        recovered["drained"] = trio.current_time()
        r.send(fresh.objects)

    config = rig.config(max_inflight_messages=10, max_hold="1h", visibility_timeout="30s")
    await rig.run(config, lambda: "drained" in recovered and rig.queue_empty(), during=outage)
    check.check_all()
    check.check_i8(bulk_max_bytes=config.output.elasticsearch.bulk_max_bytes, max_inflight=10)
    assert recovered["drained"] <= 600 + 300  # I7: the backlog drains within 5 minutes
    receives = [e for e in rig.sqs.events if e[2] == "receive"]
    assert all(value == 1 for *_, value in receives), "a message was redelivered"
    for message_id in {m for _, _, _, m, _ in receives}:
        got = rig.sqs.times("receive", message_id)[0]
        beats = [t for t in rig.sqs.times("visibility", message_id)]
        gone = rig.sqs.times("delete", message_id)[0]
        marks = [got, *beats, gone]
        assert max(b - a for a, b in itertools.pairwise(marks)) <= 15 + 7.5 + 1e-6


async def test_r7_queued_messages_behind_a_slow_sink_are_heartbeated_and_never_redelivered(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R7: 10 messages per receive, a sink taking 20 s per bulk request and a 30 s
    visibility timeout: messages waiting in the queue for a reader are extended too,
    and none is received twice (the data-prepper #4812 case)."""
    corpus = generate(7, formats=["alb"], objects=20, records=(20, 30))
    rig.s3.upload(corpus)
    check = Invariants(rig, corpus)
    rig.send(corpus.objects)
    rig.es.latency = 20
    config = rig.config(object_workers=1, es_worker=1, visibility_timeout="30s")
    await rig.run(config, rig.queue_empty)
    receives = [e for e in rig.sqs.events if e[2] == "receive"]
    assert len(receives) == 20 and all(e[4] == 1 for e in receives), "a message came back"
    check.check_all()
    waited = [m for _, t, _, m, _ in receives if rig.sqs.times("delete", m)[0] - t > 60]
    assert len(waited) >= 10
    assert all(rig.sqs.times("visibility", m) for m in waited)


async def test_r8_a_message_taken_by_a_second_consumer_loses_its_heartbeat_not_its_data(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R8 (I1, I2): while an object is in flight a second consumer receives its message
    (our handle dies) and then crashes: our heartbeat stops without harm, our delete is
    refused, the message comes back, the checkpoint says done and it is deleted; a
    duplicate delivery of another message is absorbed. Nothing lost, nothing doubled."""
    corpus = generate(8, formats=["alb", "vpcflow"], objects=4, records=(30, 40))
    rig.s3.upload(corpus)
    check = Invariants(rig, corpus)
    first, *_ = rig.send(corpus.objects[:2])
    rig.send(corpus.objects[2:])
    rig.send(corpus.objects[3:])  # SQS delivered a copy
    rig.es.latency = 20

    async def second_consumer(r: Rig) -> None:
        await trio.sleep(5)
        r.sqs.steal(QUEUE, first, hold=120)
        await trio.sleep(60)
        r.es.latency = 0

    config = rig.config(es_worker=1, es_bulk_max_size=10, visibility_timeout="30s")
    await rig.run(config, rig.queue_empty, during=second_consumer)
    check.check_i1_i2()
    check.check_i3()
    check.check_i5()
    assert rig.queue_empty()
    assert rig.sqs.times("receive", first)[-1] >= 125  # it came back after the thief died
    assert rig.telemetry.counters["objects_already_done"] >= 1


async def test_r11_an_s3_503_is_retried_in_place_and_the_object_completes(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R11 (I1, I2): GETs answered 503 SlowDown are retried with backoff by the reader
    itself: the message is received once and every record indexed once."""
    corpus = generate(11, formats=["alb"], objects=2, records=(50, 60))
    rig.s3.upload(corpus)
    check = Invariants(rig, corpus)
    for obj in corpus.objects:
        rig.s3.status_plan[obj.key] = [503, 503]
    rig.send(corpus.objects)
    await rig.run(rig.config(), rig.queue_empty)
    check.check_all()
    assert all(e[4] == 1 for e in rig.sqs.events if e[2] == "receive")


CHUNK = 256 * 1024  # what S3Client asks httpx for: each fake chunk reaches the reader whole


def _reset_corpus(rig: Rig) -> tuple[list[CorpusObject], int]:
    """A plain and a gzip object whose first GET is reset after two chunks; S3 sends
    a chunk every 5 virtual seconds, so acks are committed before the reset."""
    plain = custom_object(1, alb_key(1), ("\n".join(alb_lines(1, 2500)) + "\n").encode())
    text = ("\n".join(alb_lines(2, 6000, pad=300)) + "\n").encode()
    packed = custom_object(2, alb_key(2, ".gz"), text, compressed=True)
    assert len(plain.body) > 3 * CHUNK and len(packed.body) > 3 * CHUNK
    rig.s3.chunk = CHUNK
    rig.s3.latency = 5
    rig.s3.upload([plain, packed])
    cut = 2 * CHUNK
    rig.s3.reset_plan[plain.key] = [cut]
    rig.s3.reset_plan[packed.key] = [cut]
    return [plain, packed], cut


async def test_r11_a_connection_reset_mid_object_loses_and_doubles_nothing(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R11 (I1–I6): the S3 connection is reset after two chunks of a plain and of a
    gzip object: in the end every record is indexed exactly once, and the plain object
    was read again with a Range GET from where it stopped (past byte 0, before the cut)."""
    objects, cut = _reset_corpus(rig)
    check = Invariants(rig, Corpus(objects))
    rig.send(objects)
    await rig.run(rig.config(visibility_timeout="30s", es_flush_interval="100ms"), rig.queue_empty)
    check.check_all()
    starts = rig.s3.get_starts(objects[0].key)
    assert starts[0] == 0 and len(starts) == 2 and 0 < starts[1] <= cut


async def test_i6_the_record_counts_of_a_resumed_object_cover_every_attempt(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """I6 across a resume: an object read in two receives (the first read breaks, the
    retry is refused, the message comes back) ends ``done`` with indexed + duplicate +
    rejected + parse_failed = its records."""
    objects, _ = _reset_corpus(rig)
    for obj in objects:
        rig.s3.status_plan[obj.key] = [0, 403]  # the in-place retry fails: redelivery
    check = Invariants(rig, Corpus(objects))
    rig.send(objects)
    await rig.run(rig.config(visibility_timeout="30s", es_flush_interval="100ms"), rig.queue_empty)
    check.check_i1_i2()
    for obj in objects:
        check.check_i6(obj)


async def test_r11_a_connection_reset_mid_object_is_resumed_in_place(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R11: a reset mid-body is retried by the reader at once (Range GET for plain,
    re-read and skip for gzip), within the same receive: no failure, no redelivery."""
    objects, _ = _reset_corpus(rig)
    rig.send(objects)
    await rig.run(rig.config(visibility_timeout="30s", es_flush_interval="100ms"), rig.queue_empty)
    assert rig.telemetry.counters["objects_failed"] == 0
    assert all(e[4] == 1 for e in rig.sqs.events if e[2] == "receive")


async def test_r11_acks_arriving_after_an_object_failed_are_still_checkpointed(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R11/I9: the read breaks (a reset, then the retry is refused) while its first
    records are still in the sink; their acks arrive after the object failed: they are
    checkpointed all the same, so the redelivery resumes past them and re-sends nothing
    (no 409s)."""
    obj = custom_object(1, alb_key(1), ("\n".join(alb_lines(1, 2500)) + "\n").encode())
    rig.s3.chunk = CHUNK
    rig.s3.upload([obj])
    rig.s3.reset_plan[obj.key] = [2 * CHUNK]
    rig.s3.status_plan[obj.key] = [0, 403]
    rig.es.latency = 5  # the acks come 5 s after the failure, long before the redelivery
    check = Invariants(rig, Corpus([obj]))
    rig.send([obj])
    config = rig.config(visibility_timeout="30s", es_flush_interval="100ms", es_bulk_max_size=1000)
    await rig.run(config, rig.queue_empty)
    check.check_i1_i2()
    starts = rig.s3.get_starts(obj.key)
    assert len(starts) == 2 and starts[1] > 0, starts
    assert rig.es.item_statuses[409] == 0


async def test_r11_a_truncated_gzip_keeps_its_message_with_the_complete_records_indexed(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R11 (I1, I2): a gzip object cut short is an object error: the records before
    the cut are indexed (exactly those), the message is kept for redelivery and the
    queue's redrive policy moves it to the DLQ; the daemon goes on."""
    text = ("\n".join(alb_lines(1, 300)) + "\n").encode()
    whole = gzip.compress(text, 6, mtime=0)
    truncated = whole[: len(whole) * 2 // 3]
    obj = custom_object(1, alb_key(1, ".gz"), text, compressed=True)
    obj.body = truncated
    good = generate(3, formats=["alb"], objects=1, first_oid=2)
    rig.s3.upload([obj, *good.objects])
    partial = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(truncated)
    shipped = {obj.doc_id(r.position) for r in obj.records if r.end <= len(partial)}
    assert 0 < len(shipped) < 300
    rig.sqs.max_receive_count = 3
    rig.send([obj])
    rig.send(good.objects)
    await rig.run(rig.config(visibility_timeout="30s"), lambda: len(rig.sqs.dlq) == 1)
    indexed = {doc_id for _, doc_id in rig.es.docs}
    assert indexed == shipped | good.expected_ids()
    assert rig.telemetry.counters["objects_failed"] == 3
    assert rig.queue_empty()


async def test_r12_an_object_overwritten_before_it_is_read_is_gone_and_its_new_version_shipped(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R12 (I1, I2): the notified version was overwritten before the read: the GET
    pinned to the notified ETag fails (412), nothing of the old version is indexed, its
    message is deleted as gone; the new version's own notification indexes it under its
    own ids (no watermark of the old version is reused)."""
    old = custom_object(1, alb_key(1), ("\n".join(alb_lines(1, 20)) + "\n").encode())
    new = custom_object(1, alb_key(1), ("\n".join(alb_lines(1, 25)) + "\n").encode())
    rig.s3.upload([old])
    rig.s3.upload([new])
    assert old.etag != new.etag
    rig.send([old])
    rig.send([new])
    check = Invariants(rig, Corpus([new]))
    await rig.run(rig.config(), rig.queue_empty)
    check.check_all()
    assert rig.telemetry.counters["objects_gone"] == 1
    assert (old.bucket, old.key, old.etag) not in rig.store.states or (
        rig.store.states[(old.bucket, old.key, old.etag)].acked == 0
    )


async def test_r12_an_object_overwritten_while_it_is_read_keeps_what_was_shipped(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R12, mid-read: the object is overwritten after its first GET started and the
    connection breaks; the re-read is pinned to the notified ETag, so the new bytes are
    never mixed in: the old version ends gone with exactly its records before the break
    indexed (under the old ids), and the new version is indexed under its own."""
    old = custom_object(1, alb_key(1), ("\n".join(alb_lines(1, 2500)) + "\n").encode())
    new_text = ("\n".join(alb_lines(1, 2600)) + "\n").encode()
    rig.s3.chunk = CHUNK
    rig.s3.upload([old])
    cut = 2 * CHUNK
    rig.s3.overwrite_on_get[old.key] = new_text
    rig.s3.reset_plan[old.key] = [cut]
    rig.send([old])
    await rig.run(rig.config(visibility_timeout="30s"), rig.queue_empty)
    new = custom_object(1, alb_key(1), new_text)
    new.etag = rig.s3.objects[(new.bucket, new.key)].etag
    rig.send([new])
    await rig.run(rig.config(visibility_timeout="30s"), rig.queue_empty)
    before_cut = {old.doc_id(r.position) for r in old.records if r.end <= cut}
    indexed = {doc_id for _, doc_id in rig.es.docs}
    assert indexed == before_cut | set(new.expected_docs())
    assert rig.telemetry.counters["objects_gone"] == 1


async def test_r13_a_missing_object_deletes_its_message_once_without_a_retry_loop(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R13: NoSuchKey is permanent: one GET, an ``object gone`` event, the message
    deleted; the other object of the same message is still shipped."""
    corpus = generate(13, formats=["alb"], objects=2, records=(5, 10))
    rig.s3.upload(corpus)
    missing = corpus.objects[0]
    rig.s3.delete(missing.bucket, missing.key)
    rig.send(corpus.objects, per_message=2)
    await rig.run(rig.config(), rig.queue_empty)
    assert {i for _, i in rig.es.docs} == set(corpus.objects[1].expected_docs())
    assert len([g for g in rig.s3.gets if g.key == missing.key]) == 1
    assert rig.telemetry.counters["objects_gone"] == 1
    assert rig.telemetry.counters["messages_deleted"] == 1


async def test_r14_poison_messages_go_to_the_dlq_without_blocking_the_good_ones(
    autojump_clock: MockClock, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """R14 (I1, I6): a non-JSON body, a non-S3 event and a key with a bad escape are
    left for the redrive policy (DLQ after 3 receives); a TestEvent is deleted; garbage
    lines in a valid object are dead-lettered and the object settles; the good objects
    behind the poison arrive."""
    corpus = generate(14, records=(5, 15), bad_line_ratio=0.3)
    rig.s3.upload(corpus)
    check = Invariants(rig, corpus)
    rig.sqs.max_receive_count = 3
    poison = [
        rig.sqs.send(QUEUE, "this is not JSON"),
        rig.sqs.send(QUEUE, '{"source": "aws.ec2", "detail-type": "EC2 Instance State"}'),
        rig.sqs.send(
            QUEUE,
            '{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",'
            '"s3":{"bucket":{"name":"rel-bucket"},"object":{"key":"bad%zzkey"}}}]}',
        ),
    ]
    test_event = rig.sqs.send(
        QUEUE, '{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"rel-bucket"}'
    )
    rig.send(corpus.objects, per_message=2)
    await rig.run(rig.config(visibility_timeout="30s"), rig.queue_empty)
    check.check_all()
    assert {s.message_id for s in rig.sqs.dlq} == set(poison)
    assert rig.sqs.times("delete", test_event)
    assert rig.telemetry.counters["messages_undecodable"] == 3 * 3
    assert any(e["kind"] == "parse_failed" for e in dead_letters(rig.state_dir))


async def test_r15_duplicate_notifications_in_one_daemon_and_across_two_give_one_doc_per_id(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R15 (I2): each object notified twice to one daemon (read concurrently) and the
    same objects notified to a second daemon with its own checkpoint store: one
    document per id, and every message deleted."""
    corpus = generate(15, formats=["alb", "waf", "cloudtrail"], objects=6, records=(50, 80))
    rig.s3.upload(corpus)
    check = Invariants(rig, corpus)
    rig.send(corpus.objects)
    rig.send(corpus.objects)
    rig.send(corpus.objects, per_message=3)
    # Two messages in flight each: neither daemon can take every notification, so both
    # read some objects the other reads too (the 409s below), whichever polls first.
    other = rig.config(state_dir=str(rig.tmp_path / "other-state"), max_inflight_messages=2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.run, rig.config(max_inflight_messages=2), rig.queue_empty)
        nursery.start_soon(rig.run, other, rig.queue_empty)
    check.check_i1_i2()
    check.check_i3()
    check.check_i5()
    assert rig.queue_empty()
    assert rig.es.item_statuses[409] > 0


async def test_r16_an_auth_failure_is_an_outage_and_messages_reach_the_dlq_via_max_hold(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R16: the cluster answers 401 to everything: nothing is acked, rejected or deleted
    (not per-item rejects); each message is released after ``max_hold`` and the redrive
    policy moves it to the DLQ after 3 receives; the outage is logged."""
    corpus = generate(16, formats=["alb"], objects=5, records=(3, 5))
    rig.s3.upload(corpus)
    rig.sqs.max_receive_count = 3
    ids = rig.send(corpus.objects)
    rig.es.down = "401"
    config = rig.config(max_hold="2m", visibility_timeout="30s")
    await rig.run(config, lambda: len(rig.sqs.dlq) == 5)
    assert {s.message_id for s in rig.sqs.dlq} == set(ids)
    assert rig.sqs.times("delete") == []
    assert rig.es.docs == {} and not dead_letters(rig.state_dir)
    assert rig.telemetry.counters["messages_released_max_hold"] == 5 * 3
    assert rig.telemetry.counters["events_rejected"] == 0
    assert rig.telemetry.counters["bulk_failures"] > 0


async def test_r18_the_ack_counter_touching_zero_mid_object_does_not_delete_the_message(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R18 (I4): a slow reader and a fast sink: the first batches are all acknowledged
    long before the reader reaches the end (the in-flight count touches zero), yet the
    message is deleted only after the end of the object and its last ack (beats #38961)."""
    obj = custom_object(1, alb_key(1), ("\n".join(alb_lines(1, 3000)) + "\n").encode())
    corpus = Corpus([obj])
    rig.s3.upload([obj])
    rig.s3.chunk = CHUNK
    rig.s3.latency = 10  # 10 virtual seconds per chunk
    check = Invariants(rig, corpus)
    rig.send([obj])
    await rig.run(rig.config(es_flush_interval="100ms"), rig.queue_empty)
    check.check_all()
    chunks = -(-len(obj.body) // CHUNK)
    assert chunks >= 4
    (deleted,) = rig.sqs.times("delete")
    first_bulk = rig.es_transport.times[0]
    assert first_bulk < 20 < 10 * chunks <= deleted


async def test_r19_a_stalled_sink_stops_reading_and_receiving_and_memory_stays_bounded(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """R19 (I8): the cluster never answers for 15 virtual minutes: readers and pollers
    block; received-unsettled messages stay at the in-flight limit; no message is
    received only to expire (each received once, heartbeated); records read stop growing."""
    corpus = generate(19, formats=["alb"], objects=100, records=(50, 60))
    rig.s3.upload(corpus)
    rig.send(corpus.objects)
    rig.es.latency = 10_000
    samples: list[int] = []

    async def sample(r: Rig) -> None:
        for _ in range(3):
            await trio.sleep(300)
            samples.append(r.telemetry.counters["events_read"])

    config = rig.config(max_inflight_messages=8, object_workers=2, visibility_timeout="30s")
    await rig.run(config, lambda: len(samples) == 3, during=sample, limit=2000)
    assert samples[0] == samples[1] == samples[2] > 0
    assert 0 < rig.sqs.max_in_flight <= 8
    receives = [e for e in rig.sqs.events if e[2] == "receive"]
    assert len(receives) <= 8 and all(e[4] == 1 for e in receives)
    assert rig.sqs.times("delete") == []
    assert samples[0] < corpus.objects[0].data_records * 8 + 2 * 50 * 4
