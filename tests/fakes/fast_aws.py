"""A fast S3 + SQS stand-in for benchmarks of per-object round trips.

moto answers a request in ~10 ms of CPU on the bench machine, so with moto the emulator,
not s3lb, bounds how many small objects per second can be drained. This process answers
what ``s3lb run`` asks, in microseconds, after ``--latency-ms`` (a round trip to AWS):

- SQS, JSON protocol (``X-Amz-Target: AmazonSQS.*``): ReceiveMessage (long polling,
  visibility timeout, receipt handles), DeleteMessage(Batch), ChangeMessageVisibility,
  GetQueueAttributes, SendMessageBatch. One queue per URL path, created on first use.
- S3, path style: ``GET /bucket/key`` with ``Range`` and ``If-Match``.
- ``PUT /_bench/object/bucket/key`` stores an object (answers its ETag);
  ``GET /_bench/stats`` counts requests per action.

Requests are not authenticated. Prints its URL on the first line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import itertools
import json
import time
from collections import Counter, deque
from typing import Any
from urllib.parse import unquote

from tests.fakes.asyncio_http import serve


class Queue:
    def __init__(self) -> None:
        self.visible: deque[str] = deque()
        self.bodies: dict[str, str] = {}
        self.handles: dict[str, str] = {}  # handle -> message id
        self.invisible_until: dict[str, float] = {}
        self.receives: Counter[str] = Counter()
        self.arrived = asyncio.Event()


class Fake:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.queues: dict[str, Queue] = {}
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.counts: Counter[str] = Counter()
        self.ids = itertools.count(1)

    def queue(self, url: str) -> Queue:
        path = "/" + url.split("://", 1)[-1].split("/", 1)[-1]
        return self.queues.setdefault(path, Queue())

    def _expire(self, q: Queue) -> None:
        now = time.monotonic()
        for mid, until in list(q.invisible_until.items()):
            if until <= now:
                del q.invisible_until[mid]
                if mid in q.bodies:
                    q.visible.append(mid)

    async def sqs(self, action: str, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        q = self.queue(req["QueueUrl"])
        if action == "ReceiveMessage":
            deadline = time.monotonic() + float(req.get("WaitTimeSeconds", 0))
            self._expire(q)
            while not q.visible and time.monotonic() < deadline:
                q.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(q.arrived.wait(), deadline - time.monotonic())
                self._expire(q)
            out = []
            for _ in range(min(int(req.get("MaxNumberOfMessages", 1)), len(q.visible))):
                mid = q.visible.popleft()
                q.receives[mid] += 1
                handle = f"{mid}-{q.receives[mid]}"
                q.handles[handle] = mid
                q.invisible_until[mid] = time.monotonic() + 300
                out.append(
                    {
                        "MessageId": mid,
                        "ReceiptHandle": handle,
                        "Body": q.bodies[mid],
                        "Attributes": {
                            "ApproximateReceiveCount": str(q.receives[mid]),
                            "SentTimestamp": str(int(time.time() * 1000)),
                        },
                    }
                )
            return 200, {"Messages": out} if out else {}
        if action in ("DeleteMessage", "DeleteMessageBatch"):
            entries = req.get("Entries") or [{"Id": "0", "ReceiptHandle": req["ReceiptHandle"]}]
            ok, failed = [], []
            for e in entries:
                mid = q.handles.pop(e["ReceiptHandle"], None)
                if mid is None:
                    failed.append({"Id": e["Id"], "Code": "ReceiptHandleIsInvalid", "Message": "?"})
                    continue
                q.bodies.pop(mid, None)
                q.invisible_until.pop(mid, None)
                ok.append({"Id": e["Id"]})
            return 200, {"Successful": ok, "Failed": failed} if "Entries" in req else {}
        if action == "ChangeMessageVisibility":
            mid = q.handles.get(req["ReceiptHandle"])
            if mid is None:
                return 400, {"__type": "com.amazonaws.sqs#ReceiptHandleIsInvalid", "message": "?"}
            timeout = int(req["VisibilityTimeout"])
            if timeout == 0:
                q.invisible_until.pop(mid, None)
                q.visible.append(mid)
                q.arrived.set()
            else:
                q.invisible_until[mid] = time.monotonic() + timeout
            return 200, {}
        if action == "GetQueueAttributes":
            self._expire(q)
            return 200, {
                "Attributes": {
                    "VisibilityTimeout": "300",
                    "ApproximateNumberOfMessages": str(len(q.visible)),
                    "ApproximateNumberOfMessagesNotVisible": str(len(q.invisible_until)),
                }
            }
        if action == "SendMessageBatch":
            for e in req["Entries"]:
                mid = f"m{next(self.ids)}"
                q.bodies[mid] = e["MessageBody"]
                q.visible.append(mid)
            q.arrived.set()
            return 200, {"Successful": [{"Id": e["Id"]} for e in req["Entries"]], "Failed": []}
        return 400, {"__type": "com.amazonaws.sqs#InvalidAction", "message": action}

    def s3_get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        bucket, _, key = unquote(path.lstrip("/")).partition("/")
        found = self.objects.get((bucket, key))
        if found is None:
            return 404, {}, b"<Error><Code>NoSuchKey</Code><Message>no</Message></Error>"
        data, etag = found
        if "if-match" in headers and headers["if-match"].strip('"') != etag:
            return 412, {}, b"<Error><Code>PreconditionFailed</Code><Message>x</Message></Error>"
        status, start = 200, 0
        if "range" in headers:
            start = int(headers["range"].split("=", 1)[1].split("-", 1)[0])
            if start >= len(data):
                return 416, {}, b"<Error><Code>InvalidRange</Code><Message>x</Message></Error>"
            status = 206
        return status, {"ETag": f'"{etag}"'}, data[start:]


async def answer(
    fake: Fake, method: str, target: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """One request: the bench's own API, SQS (JSON protocol) or an S3 GET."""
    path = target.split("?", 1)[0]
    if path.startswith("/_bench/object/"):
        bucket, _, key = unquote(path[len("/_bench/object/") :]).partition("/")
        etag = hashlib.md5(body).hexdigest()
        fake.objects[(bucket, key)] = (body, etag)
        return 200, {}, json.dumps({"ETag": etag}).encode()
    if path.startswith("/_bench/"):
        return 200, {}, json.dumps(fake.counts).encode()
    if fake.latency:
        await asyncio.sleep(fake.latency)
    amz = headers.get("x-amz-target", "")
    if amz.startswith("AmazonSQS."):
        action = amz.split(".", 1)[1]
        fake.counts[action] += 1
        status, reply = await fake.sqs(action, json.loads(body or b"{}"))
        return status, {}, json.dumps(reply).encode()
    if method in ("GET", "HEAD"):
        fake.counts["GetObject"] += 1
        return fake.s3_get(path, headers)
    return 400, {}, b"{}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-ms", type=float, default=0.0)
    args = ap.parse_args()
    fake = Fake(args.latency_ms / 1000)
    serve(functools.partial(answer, fake))


if __name__ == "__main__":
    main()
