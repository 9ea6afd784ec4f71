"""Checkpoints end to end: a restart after SIGTERM or kill -9 resumes a half-done
object from its last acknowledged line; a finished object is never re-sent."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.integration.test_run import config
from tests.support.daemon import S3lbProcess
from tests.support.helpers import ALB, big_alb, expected_ids, state_json, wait_until

pytestmark = pytest.mark.slow

LINES = 200_000
BATCH = 2000
WORKERS = 2


def resume_config(queue: str, es_url: str) -> str:
    return config(
        queues=[queue],
        es_url=es_url,
        shutdown_timeout="1s",
        es={"bulk_max_size": BATCH, "worker": WORKERS},
    )


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("how", ["sigterm", "kill-9"])
def test_a_restart_resumes_a_half_done_object_and_indexes_every_line_once(
    aws: Aws,
    fake_es: FakeEs,
    daemon: Callable[..., S3lbProcess],
    tmp_path: Path,
    how: str,
    compress: bool,
) -> None:
    queue, bucket = aws.quiet_queue(VisibilityTimeout=4)
    key = "prod-web/big.log.gz" if compress else "prod-web/big.log"
    expected = expected_ids(bucket, key, aws.put(bucket, key, big_alb(LINES), compress), LINES)
    fake_es.latency = 0.05

    first = daemon(resume_config(queue, fake_es.url))
    wait_until(lambda: len(fake_es.docs) >= LINES // 3, 120, "a third of the object")
    if how == "sigterm":
        assert first.stop() == 0
        assert "resuming" not in first.log
    else:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(30)
    indexed_before = len(fake_es.docs)
    assert indexed_before < LINES

    (obj,) = state_json(tmp_path / "s3lb.yml")["objects"]  # type: ignore[misc]
    assert obj["key"] == key and obj["status"] == "in_progress"
    assert 0 < obj["acked"] <= indexed_before

    second = daemon(resume_config(queue, fake_es.url))
    wait_until(lambda: len(fake_es.docs) == LINES, 180, "the rest of the object")
    wait_until(lambda: aws.counts(queue) == (0, 0), 60, "the message deleted")
    assert second.stop() == 0
    assert "resuming object from its checkpoint" in second.log
    if not compress:
        assert "ranged=True" in second.log  # a Range GET, not a re-read
    assert {doc_id for _, doc_id in fake_es.docs} == expected
    # Re-sent documents (answered 409) are bounded by one batch per bulk worker, after
    # SIGTERM and kill -9 alike: a worker takes its next batch only once the acks of the
    # last one are durable.
    resent = fake_es.item_statuses[409]
    print(f"{how}: re-sent {resent} of {LINES}")
    assert resent <= WORKERS * BATCH, resent
    (obj,) = state_json(tmp_path / "s3lb.yml")["objects"]  # type: ignore[misc]
    assert obj["status"] == "done" and obj["acked"] == LINES


def test_a_notification_for_an_object_already_done_deletes_without_resending(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess]
) -> None:
    queue = aws.queue()
    bucket = aws.bucket(queue)
    etag = aws.put(bucket, "prod-web/a.log", ALB)
    run = daemon(config(queues=[queue], es_url=fake_es.url))
    wait_until(lambda: len(fake_es.docs) == 5, 30, "the object indexed")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the queue to empty")
    requests = len(fake_es.requests)
    record = {
        "eventSource": "aws:s3",
        "eventVersion": "2.1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": "prod-web/a.log", "eTag": etag}},
    }
    aws.send(queue, {"Records": [record]})
    wait_until(lambda: "object already done; nothing re-sent" in run.log, 30, "the repeat")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the repeat deleted")
    assert run.stop() == 0
    assert len(fake_es.requests) == requests
