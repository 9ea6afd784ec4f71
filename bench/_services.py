"""The services a bench talks to, each in a process of its own on 127.0.0.1: moto
(S3 + SQS), the fast S3/SQS stand-in and the null bulk endpoint of ``tests/fakes``, the
real OpenSearch node of ``tests/opensearch_node.py``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Self

from _base import AWS_ENV, PYTHON, REPO, load_by_path
from _data import notification_bodies
from _procs import child_pids, cmdline, pinned

_MOTO = """
import logging, sys, threading
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
print(f"http://{host}:{port}", flush=True)
sys.stdin.read()  # until the harness closes our stdin (or exits)
server.stop()
"""


class Aws:
    """moto (S3 + SQS, ``ThreadedMotoServer`` on 127.0.0.1, port 0) in a process of its
    own, so that neither its GIL nor the harness's stands in the daemon's way; and
    botocore clients to it."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [PYTHON, "-c", _MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise RuntimeError("moto did not start")
        import botocore.config
        import botocore.session

        session = botocore.session.get_session()
        kwargs: dict[str, Any] = {
            "region_name": "us-east-1",
            "endpoint_url": self.url,
            "aws_access_key_id": "bench",
            "aws_secret_access_key": "bench",
            "config": botocore.config.Config(max_pool_connections=20),
        }
        self.s3 = session.create_client("s3", **kwargs)
        self.sqs = session.create_client("sqs", **kwargs)

    @property
    def pid(self) -> int:
        return self._process.pid

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> Aws:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def env(self) -> dict[str, str]:
        """The daemon's environment: credentials and endpoint of this moto."""
        return daemon_env(self.url)

    def queue(self, **attributes: Any) -> str:
        name = f"bench-{uuid.uuid4().hex[:10]}"
        attrs = {k: str(v) for k, v in attributes.items()}
        return self.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]

    def bucket(self) -> str:
        name = f"bench-{uuid.uuid4().hex[:10]}"
        self.s3.create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, body: bytes) -> str:
        return self.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')

    def put_stream(self, bucket: str, key: str, parts: Iterable[bytes], part_size: int) -> str:
        """Multipart upload of the concatenation of ``parts`` (never all in memory here)."""
        upload = self.s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        done, buf, number = [], bytearray(), 1

        def flush(data: bytes) -> None:
            nonlocal number
            etag = self.s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data
            )["ETag"]
            done.append({"ETag": etag, "PartNumber": number})
            number += 1

        for piece in parts:
            buf += piece
            while len(buf) >= part_size:
                flush(bytes(buf[:part_size]))
                del buf[:part_size]
        if buf or not done:
            flush(bytes(buf))
        result = self.s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
        )
        return result["ETag"].strip('"')

    def notify(
        self, queue_url: str, bucket: str, objects: list[tuple[str, str, int]], per_message: int = 1
    ) -> None:
        """Send S3 ObjectCreated notifications (AWS's shape) for ``(key, etag, size)``,
        ``per_message`` records per message, ten messages per SendMessageBatch."""
        bodies = notification_bodies(bucket, objects, per_message)
        for i in range(0, len(bodies), 10):
            entries = [{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])]
            self.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)

    def counts(self, queue_url: str) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )


def daemon_env(endpoint: str) -> dict[str, str]:
    """A daemon's environment: this one's, the benches' credentials, ``endpoint`` for AWS."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN")}
    return {**env, **AWS_ENV, "AWS_ENDPOINT_URL": endpoint}


class StandIn:
    """A stand-in server of ``tests/fakes`` (``python -m MODULE ARGS``) in a process of its
    own, which prints its URL first; ``GET /_bench/stats`` gives its counters."""

    def __init__(self, module: str, *args: str) -> None:
        cmd = [PYTHON, "-m", module, *args]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise RuntimeError(f"{module} did not start: {self.url!r}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/_bench/stats", timeout=10) as r:
            return json.loads(r.read())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FastAws(StandIn):
    """tests/fakes/fast_aws.py as a subprocess: S3 + SQS answered in microseconds after
    ``latency_ms`` (a modelled round trip to AWS). Same interface as :class:`Aws`
    for what the benchmarks use."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        super().__init__("tests.fakes.fast_aws", "--latency-ms", str(latency_ms))

    @property
    def env(self) -> dict[str, str]:
        """The daemon's environment: credentials and endpoint of this stand-in."""
        return daemon_env(self.url)

    def _post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method="POST" if path == "/" else "PUT",
            headers=headers or {},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read() or b"{}")

    def _sqs(self, action: str, payload: dict[str, Any]) -> Any:
        headers = {
            "X-Amz-Target": f"AmazonSQS.{action}",
            "Content-Type": "application/x-amz-json-1.0",
        }
        return self._post("/", json.dumps(payload).encode(), headers)

    def queue(self, **attributes: Any) -> str:
        return f"{self.url}/123456789012/bench-{uuid.uuid4().hex[:10]}"

    def bucket(self) -> str:
        return f"bench-{uuid.uuid4().hex[:10]}"

    def put(self, bucket: str, key: str, body: bytes) -> str:
        return self._post(f"/_bench/object/{bucket}/{key}", body)["ETag"]

    def notify(
        self, queue_url: str, bucket: str, objects: list[tuple[str, str, int]], per_message: int = 1
    ) -> None:
        bodies = notification_bodies(bucket, objects, per_message)
        for i in range(0, len(bodies), 10):
            entries = [{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])]
            self._sqs("SendMessageBatch", {"QueueUrl": queue_url, "Entries": entries})

    def counts(self, queue_url: str) -> tuple[int, int]:
        """Messages visible and in flight."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attrs = self._sqs("GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": names})
        return int(attrs["Attributes"][names[0]]), int(attrs["Attributes"][names[1]])


class NullSink(StandIn):
    """``tests/fakes/null_sink.py`` as a subprocess: acknowledges every bulk item, answers
    409 to an ``_id`` it has seen (``track_ids``), optionally after ``latency`` seconds."""

    def __init__(self, *, track_ids: bool = False, latency: float = 0.0) -> None:
        flags = ["--track-ids"] if track_ids else []
        super().__init__("tests.fakes.null_sink", "--latency", str(latency), *flags)

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/_bench/reset", method="POST", data=b"")
        urllib.request.urlopen(request, timeout=10).close()


@contextlib.contextmanager
def opensearch(
    tmp: Path, heap: str = "1g", cpus: set[int] | None = None
) -> Iterator[tuple[str, int | None]]:
    """A real OpenSearch 2.19 node (tests/opensearch_node.py): ``(url, jvm pid)``. With
    ``cpus``, the JVM starts on those cores (it sizes its thread pools by them)."""
    node = load_by_path("s3lb_bench_opensearch_node", REPO / "tests" / "opensearch_node.py")
    reason = node.skip_reason(REPO)
    if reason:
        raise SystemExit(f"cannot run the OpenSearch node: {reason}")
    before = set(child_pids(os.getpid()))
    with contextlib.ExitStack() as stack:
        with pinned(cpus):
            url = stack.enter_context(node.running_node(tmp, repo_root=REPO, heap=heap))
        new = [p for p in child_pids(os.getpid()) if p not in before]
        java = next((p for p in new if b"java" in cmdline(p)), None)
        yield url, java


def es_request(url: str, method: str = "GET", body: Any = None, timeout: float = 60) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, method=method, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
