"""Shared fixtures: a moto server for S3/SQS over HTTP, AWS helpers, the fake cluster,
the real OpenSearch node, and ``s3lb run`` subprocesses (:mod:`tests.support.daemon`)."""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_es import FakeEs
from tests.paths import REPO
from tests.standalone import install_guard
from tests.support.daemon import S3lbProcess
from tests.support.helpers import wait_until

install_guard()  # no test may read a file beside the repository (tests/standalone.py)

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server (S3 + SQS) on 127.0.0.1, shared by the whole run."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Aws:
    """Test-side S3/SQS access (botocore clients against moto)."""

    def __init__(self, endpoint: str) -> None:
        import botocore.session

        self.endpoint = endpoint
        session = botocore.session.get_session()
        kwargs = {
            "region_name": "us-east-1",
            "endpoint_url": endpoint,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self.s3 = session.create_client("s3", **kwargs)
        self.sqs = session.create_client("sqs", **kwargs)

    def queue(self, name: str = "", **attributes: Any) -> str:
        """Create a queue with a unique name; return its URL."""
        name = name or f"q-{uuid.uuid4().hex[:12]}"
        attrs = {k: str(v) for k, v in attributes.items()}
        return self.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]

    def queue_arn(self, url: str) -> str:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return attrs["Attributes"]["QueueArn"]

    def bucket(
        self, notify_queue: str | None = None, events: tuple[str, ...] = ("s3:ObjectCreated:*",)
    ) -> str:
        """Create a bucket (unique name), optionally notifying ``notify_queue``."""
        name = f"b-{uuid.uuid4().hex[:12]}"
        self.s3.create_bucket(Bucket=name)
        if notify_queue:
            self.s3.put_bucket_notification_configuration(
                Bucket=name,
                NotificationConfiguration={
                    "QueueConfigurations": [
                        {"QueueArn": self.queue_arn(notify_queue), "Events": list(events)}
                    ]
                },
            )
        return name

    def quiet_queue(self, **attributes: Any) -> tuple[str, str]:
        """A queue notified by a new bucket, with the bucket's TestEvent already gone;
        returns (queue URL, bucket)."""
        queue = self.queue(**attributes)
        bucket = self.bucket(queue)
        wait_until(lambda: self.counts(queue)[0] == 1, 10, "the TestEvent")
        self.sqs.purge_queue(QueueUrl=queue)
        return queue, bucket

    def put(self, bucket: str, key: str, body: bytes, compress: bool = False) -> str:
        """Upload; return the ETag (unquoted)."""
        data = gzip.compress(body) if compress else body
        return self.s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"].strip('"')

    def send(self, queue_url: str, body: str | dict[str, Any]) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.sqs.send_message(QueueUrl=queue_url, MessageBody=text)

    def counts(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) messages of the queue."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attrs["ApproximateNumberOfMessages"]),
            int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        )


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Aws:
    """AWS clients for the test, and the environment pointing s3lb at moto."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**AWS_ENV, "AWS_ENDPOINT_URL": moto_url}.items():
        monkeypatch.setenv(name, value)
    return Aws(moto_url)


@pytest.fixture
def fake_es() -> Iterator[FakeEs]:
    """A fake cluster on 127.0.0.1 with fault knobs."""
    with FakeEs() as es:
        yield es


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., S3lbProcess]]:
    """Start ``s3lb run`` subprocesses in ``tmp_path`` (configuration ``s3lb.yml``) and
    wait until they poll; killed at the end of the test if still running."""
    started: list[S3lbProcess] = []

    def start(config: str, env: dict[str, str] | None = None) -> S3lbProcess:
        started.append(S3lbProcess(tmp_path, config, env))
        started[-1].start(wait=True)
        return started[-1]

    yield start
    for d in started:
        d.kill()


__all__ = ["REPO", "Aws", "S3lbProcess", "wait_until"]


@pytest.fixture(scope="session")
def opensearch_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenSearch 2.19 node on 127.0.0.1 (tests/opensearch), started once per run.

    Without Java 17+ (or Maven for a first build) the tests using it are skipped with the
    reason; under ``CI=true`` that is a failure instead.
    """
    from tests import opensearch_node

    reason = opensearch_node.skip_reason()
    if reason:
        if opensearch_node.in_ci():
            pytest.fail(f"{reason} (CI=true: a missing node fails)", pytrace=False)
        pytest.skip(reason)
    with opensearch_node.running_node(tmp_path_factory.mktemp("opensearch")) as url:
        yield url
