"""``s3lb run`` end to end: moto S3/SQS over HTTP, a subprocess daemon, a fake cluster.

These are the core promises: every line indexed exactly once by ``_id`` in the index
of its own day; a message deleted only after all its objects are acknowledged; bad
input logged and kept (redrive) without stopping the daemon; exit 0 on SIGTERM.
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.paths import SEED as SEED_DIR
from tests.support.configs import s3lb_config
from tests.support.daemon import S3lbProcess
from tests.support.helpers import (
    ALB,
    ALB_LINES,
    KEY_FIELDS,
    event_record,
    expected_ids,
    wait_until,
)

pytestmark = pytest.mark.slow

ALB_DAYS = ["2016.08.10"] * ALB_LINES

#: This module's daemons: ``config(queues=[…], es_url=…, **settings)``.
config = functools.partial(
    s3lb_config,
    state_dir="./state-test",
    log_format="alb",
    input_options={"key_regex_fields": KEY_FIELDS},
)


def test_every_line_is_indexed_once_in_its_day_and_the_queue_empties(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess]
) -> None:
    queue = aws.queue()
    bucket = aws.bucket(queue, events=("s3:ObjectCreated:*", "s3:ObjectRemoved:*"))
    quiet = aws.bucket()  # no notifications: reached through hand-made messages
    expected: set[str] = set()
    keys = [
        "prod-web/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/08/10/a.log.gz",
        "prod-web/dir with spaces/a+b=c (1).log.gz",
    ]
    for key in keys:
        etag = aws.put(bucket, key, ALB, compress=True)
        expected |= expected_ids(bucket, key, etag, ALB_LINES)
    aws.put(bucket, "prod-web/empty.log.gz", b"")
    aws.put(bucket, "prod-web/removed.log", b"")
    aws.s3.delete_object(Bucket=bucket, Key="prod-web/removed.log")  # an ObjectRemoved record

    sns_key, eb_key = "prod-sns/x.log", "prod-eb/y z.log"
    for key, wrap in ((sns_key, "sns"), (eb_key, "eventbridge")):
        etag = aws.put(quiet, key, ALB)
        expected |= expected_ids(quiet, key, etag, ALB_LINES)
        encoded = key.replace(" ", "+")
        if wrap == "sns":
            body = {
                "Type": "Notification",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:logs",
                "Message": json.dumps({"Records": [event_record(quiet, key, etag, encoded)]}),
            }
        else:
            body = {
                "version": "0",
                "detail-type": "Object Created",
                "source": "aws.s3",
                "detail": {"bucket": {"name": quiet}, "object": {"key": encoded, "etag": etag}},
            }
        aws.send(queue, body)

    run = daemon(config(queues=[queue], es_url=fake_es.url))
    wait_until(lambda: len(fake_es.docs) >= len(expected), 30, "every document indexed")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the queue to empty")
    assert run.stop() == 0, run.log

    docs = fake_es.docs
    assert {doc_id for _, doc_id in docs} == expected
    assert len(docs) == len(expected)  # no id in two indexes
    assert {index for index, _ in docs} == {"alb-2016.08.10"}
    sources = list(docs.values())
    assert Counter(s["environment"] for s in sources) == {"prod": len(expected)}
    assert Counter(s["application"] for s in sources) == {
        "web": 2 * ALB_LINES,
        "sns": ALB_LINES,
        "eb": ALB_LINES,
    }
    assert all(s["@timestamp"].startswith("2016-08-10T") for s in sources)
    assert "message names no new object; deleted" in run.log  # TestEvent, ObjectRemoved
    assert "s3lb stopped" in run.log


@pytest.mark.parametrize("processes", [1, 2])
def test_nothing_is_deleted_while_the_cluster_is_down_then_everything_arrives(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess], processes: int
) -> None:
    queue, bucket = aws.quiet_queue()
    fake_es.down = "503"
    expected: set[str] = set()
    for i in range(3):
        key = f"prod-web/{i}.log.gz"
        expected |= expected_ids(bucket, key, aws.put(bucket, key, ALB, compress=True), ALB_LINES)

    run = daemon(config(queues=[queue], es_url=fake_es.url, processes=processes))
    wait_until(lambda: "cluster unavailable" in run.log, 20, "the outage to be noticed")
    time.sleep(2)  # several retries happen meanwhile
    visible, in_flight = aws.counts(queue)
    assert visible + in_flight == 3, "a message was deleted during the outage"
    assert fake_es.docs == {}

    fake_es.down = None
    wait_until(lambda: len(fake_es.docs) == len(expected), 30, "delivery after the outage")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the queue to empty")
    assert run.stop() == 0
    assert {doc_id for _, doc_id in fake_es.docs} == expected
    assert "cluster available again" in run.log


@pytest.mark.parametrize("processes", [1, 2])
def test_bad_inputs_are_logged_kept_for_redrive_and_the_daemon_keeps_running(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess], processes: int
) -> None:
    dlq = aws.queue()
    queue = aws.queue(
        VisibilityTimeout=1,
        RedrivePolicy=json.dumps({"deadLetterTargetArn": aws.queue_arn(dlq), "maxReceiveCount": 2}),
    )
    bucket = aws.bucket()
    corrupt = b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4
    aws.put(bucket, "prod-web/corrupt.log.gz", corrupt)
    good_etag = aws.put(bucket, "prod-web/good.log.gz", ALB, compress=True)
    bad_escape = (SEED_DIR / "sqs-message-bad-escape.json").read_text()
    aws.send(queue, "this is not JSON")
    aws.send(queue, bad_escape)
    for key in ("prod-web/corrupt.log.gz", "prod-web/missing.log.gz"):
        aws.send(queue, {"Records": [event_record(bucket, key, "", key)]})

    run = daemon(config(queues=[queue], es_url=fake_es.url, processes=processes))
    wait_until(lambda: aws.counts(dlq)[0] == 3, 30, "three poison messages in the DLQ")
    assert "message cannot be decoded; left for the queue's redrive policy" in run.log
    assert "malformed" in run.log
    assert "object failed; its message is kept for redelivery" in run.log
    assert "corrupt gzip" in run.log
    assert "object gone; nothing to ship" in run.log and "NoSuchKey" in run.log

    # Still alive: a good object sent now is shipped.
    aws.send(
        queue,
        {
            "Records": [
                event_record(bucket, "prod-web/good.log.gz", good_etag, "prod-web/good.log.gz")
            ]
        },
    )
    expected = expected_ids(bucket, "prod-web/good.log.gz", good_etag, ALB_LINES)
    wait_until(lambda: {i for _, i in fake_es.docs} == expected, 30, "the good object")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the queue to empty")
    assert run.stop() == 0


def test_with_the_cluster_down_nothing_is_received_beyond_the_in_flight_budget(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess]
) -> None:
    queue, bucket = aws.quiet_queue()
    fake_es.down = "503"
    expected: set[str] = set()
    for i in range(20):
        key = f"prod-web/{i}.log.gz"
        expected |= expected_ids(bucket, key, aws.put(bucket, key, ALB, compress=True), ALB_LINES)

    run = daemon(config(queues=[queue], es_url=fake_es.url, max_inflight_messages=4))
    wait_until(lambda: "cluster unavailable" in run.log, 20, "the outage to be noticed")
    for _ in range(20):  # a few seconds of outage, sampled
        visible, in_flight = aws.counts(queue)
        assert in_flight <= 4 and visible + in_flight == 20
        time.sleep(0.1)

    fake_es.down = None
    wait_until(lambda: len(fake_es.docs) == len(expected), 30, "delivery after the outage")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the queue to empty")
    assert run.stop() == 0


def test_a_deeply_nested_json_body_is_judged_alone_and_the_daemon_keeps_running(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess]
) -> None:
    """Issue 16.1: a 2 KB body of nested brackets neither stops the daemon nor takes
    the valid notification received beside it to the dead-letter queue."""
    dlq = aws.queue()
    queue = aws.queue(
        VisibilityTimeout=1,
        RedrivePolicy=json.dumps({"deadLetterTargetArn": aws.queue_arn(dlq), "maxReceiveCount": 2}),
    )
    bucket = aws.bucket()
    key = "prod-web/good.log.gz"
    etag = aws.put(bucket, key, ALB, compress=True)
    aws.send(queue, "[" * 1000 + "]" * 1000)
    aws.send(queue, {"Records": [event_record(bucket, key, etag, key)]})

    run = daemon(config(queues=[queue], es_url=fake_es.url))
    expected = expected_ids(bucket, key, etag, ALB_LINES)
    wait_until(lambda: {i for _, i in fake_es.docs} == expected, 30, "the valid object")
    wait_until(lambda: aws.counts(dlq)[0] == 1, 30, "the nested body in the DLQ")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the queue to empty")
    assert run.alive(), run.log
    assert "JSON nested too deeply" in run.log
    assert run.stop() == 0
