"""Issue 16 item 11 on the component rig (autojump clock): the same object notified
many times at once is read and sent once; a bucket S3 does not know keeps its
messages and is reported once a minute (see docs/reliability.md, "Issue 16 — item 11
decisions")."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from trio.testing import MockClock

from tests.fakes.fake_s3 import FakeS3
from tests.reliability.corpus import generate
from tests.reliability.harness import Invariants, Rig


async def test_an_object_notified_five_times_at_once_is_read_and_sent_once(
    autojump_clock: MockClock, rig: Rig
) -> None:
    """20 objects, each notified in 5 messages sent together (as a replayed or doubled
    event source does): every object is read once and each document sent once (no 409
    from the cluster), every message is deleted after its object's done mark."""
    corpus = generate(1611, formats=["alb", "vpcflow"], objects=20, records=(20, 40))
    rig.s3.upload(corpus)
    check = Invariants(rig, corpus)
    for obj in corpus.objects:
        rig.send([obj] * 5)
    await rig.run(rig.config(max_inflight_messages=100), rig.queue_empty)
    check.check_i1_i2()
    check.check_i4()
    assert rig.queue_empty()
    documents = len(check.expected_ids())
    assert rig.es.item_statuses[409] == 0
    assert sum(r.n_items for r in rig.es.requests) == documents
    assert {len(rig.s3.get_starts(o.key)) for o in corpus.objects} == {1}
    counters = rig.telemetry.counters
    assert counters["objects_deduplicated"] + counters["objects_already_done"] == 80
    assert counters["objects_deduplicated"] > 0
    assert counters["messages_deleted"] == 100


class _NoBucketS3(FakeS3):
    """:class:`FakeS3` that answers ``NoSuchBucket`` for every bucket in ``missing``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.missing: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        bucket = request.url.path.lstrip("/").partition("/")[0]
        if bucket in self.missing:
            body = (
                "<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchBucket</Code>"
                f"<Message>The specified bucket does not exist</Message><BucketName>{bucket}"
                "</BucketName></Error>"
            )
            return httpx.Response(404, request=request, content=body.encode())
        return await super().handle_async_request(request)


async def test_a_missing_bucket_keeps_every_message_for_the_dlq_and_logs_once_a_minute(
    autojump_clock: MockClock, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten messages naming a bucket S3 does not know, received 5 times each over several
    virtual minutes: none is deleted (all reach the DLQ through the redrive policy),
    each receive counts, the error names the bucket and endpoint at most once a minute;
    an object of a known bucket alongside is shipped and its message deleted."""
    rig.s3 = s3 = _NoBucketS3(rig.seq)
    s3.missing.add("gone-bucket")
    corpus = generate(1612, formats=["alb"], objects=11, records=(2, 4))
    lost = corpus.objects[:10]
    for obj in lost:
        obj.bucket = "gone-bucket"
    rig.s3.upload(corpus.objects[10:])
    for obj in lost:
        obj.etag = "0" * 32
    rig.sqs.max_receive_count = 5
    kept = rig.send(lost)
    rig.send(corpus.objects[10:])
    caplog.set_level(logging.INFO, logger="s3lb")
    config = rig.config(visibility_timeout="30s")
    await rig.run(config, lambda: len(rig.sqs.dlq) == 10 and rig.queue_empty())
    assert {s.message_id for s in rig.sqs.dlq} == set(kept)
    assert len(rig.sqs.times("delete")) == 1  # only the known bucket's message
    counters = rig.telemetry.counters
    assert counters["objects_bucket_missing"] == 10 * 5
    assert counters["objects_gone"] == 0
    errors = [r for r in caplog.records if "bucket does not exist" in r.getMessage()]
    span = max(rig.sqs.times("receive")) - min(rig.sqs.times("receive"))
    assert span >= 120  # the redrives took minutes…
    assert 1 <= len(errors) <= span // 60 + 1  # …and each minute logged it once at most
    context = errors[0].context  # type: ignore[attr-defined]
    assert context["bucket"] == "gone-bucket"
    assert context["endpoint"] == "http://aws.rel.invalid"
    assert errors[0].levelno == logging.ERROR
    assert json.loads(rig.sqs.dlq[0].body)["Records"][0]["s3"]["bucket"]["name"] == "gone-bucket"
