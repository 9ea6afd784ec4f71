"""Issue 12: with ``log_format: auto``, an object whose format cannot be told is kept in
the dead-letter store whole, counted, listed by ``s3lb state``, and its message deleted:
nothing lost and no redelivery loop (before, the message came back until the DLQ)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.integration.test_run import config
from tests.support.daemon import S3lbProcess
from tests.support.helpers import event_record, wait_until

pytestmark = pytest.mark.slow


def test_an_object_of_unknown_format_is_dead_lettered_whole_and_its_message_deleted(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess], tmp_path: Path
) -> None:
    dlq = aws.queue()
    queue = aws.queue(
        VisibilityTimeout=1,
        RedrivePolicy=json.dumps({"deadLetterTargetArn": aws.queue_arn(dlq), "maxReceiveCount": 2}),
    )
    bucket = aws.bucket()
    key = "exports/custom/part-0001.txt"
    etag = aws.put(bucket, key, b"hello\nthis is no AWS log\n")
    aws.send(queue, {"Records": [event_record(bucket, key, etag, key)]})
    settings = config(queues=[queue], es_url=fake_es.url, log_format="auto")

    run = daemon(settings)
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the message deleted")
    assert run.stop() == 0
    assert aws.counts(dlq) == (0, 0)  # deleted by s3lb, not redriven
    assert "object dead-lettered whole; its message is deleted" in run.log
    assert run.log.count("object dead-lettered whole") == 1  # received once, no loop
    assert fake_es.docs == {}

    entries = [
        json.loads(line)
        for path in (tmp_path / "state-test" / "dead-letter").glob("*.ndjson")
        for line in path.read_text().splitlines()
    ]
    assert [(e["kind"], e["bucket"], e["key"], e["version"]) for e in entries] == [
        ("unknown_format", bucket, key, etag)
    ]
    assert "tells the format" in entries[0]["reason"]

    state = subprocess.run(
        [sys.executable, "-m", "s3lb", "state", "--json", "-c", str(tmp_path / "s3lb.yml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (obj,) = json.loads(state.stdout)["objects"]
    assert (obj["key"], obj["status"]) == (key, "failed")
    assert "tells the format" in obj["error"]
