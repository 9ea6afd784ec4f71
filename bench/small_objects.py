"""Many small objects: 1,000 one-line gzip ALB objects, one S3 notification each,
drained by ``s3lb run``; against processing them one at a time. Target: ≥ 20×.

Run: ``.venv/bin/python bench/small_objects.py [--quick] [--aws moto]``

- S3 and SQS: tests/fakes/fast_aws.py in a process of its own, answering each request after
  ``--latency-ms`` (5 ms: a round trip within a region); ``--aws moto`` uses moto
  instead, whose ~10 ms of CPU per request then bounds both sides. The cluster is
  tests/fakes' FakeEs in this process, with the same latency (the cluster is not what
  is measured here: per-object round trips are).
- Each run starts from the same full queue (the notifications are sent before the
  clock starts); the clock runs until every message is deleted (s3lb: from its
  "s3lb is running" line until the queue has no message left, visible or not, asked
  every 20 ms; then ``s3lb_messages_deleted_total`` must count them all).
- The baseline, one at a time: a plain loop on one keep-alive httpx client (SQS's JSON
  protocol, S3 GET, ``_bulk``) and s3lb's own parser, that receives one message, GETs
  its object, indexes its document and deletes the message before the next.
- The target row runs ``processes`` = the machine's cores (what ``auto`` gives; the
  fakes share those cores). Rows besides it: one process (its CPU per object is the
  number to cut), ``flush_interval: 20ms`` (the bulk workers' wait for a fuller batch,
  1 s by default), and ten objects per notification (objects of one message in
  parallel). ``--profile`` profiles one process (pyinstrument).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

from tests.fakes.fake_es import FakeEs


def serial(aws_url: str, queue_url: str, es_url: str, expected: int) -> float:
    """The one-at-a-time shipper; seconds to delete ``expected`` messages."""
    import httpx
    import msgspec

    from s3lb.pipeline.framing import LineCutter
    from s3lb.pipeline.parsing import ObjectParser

    encode = msgspec.json.Encoder().encode
    sqs_headers = {"Content-Type": "application/x-amz-json-1.0"}

    def sqs(client: httpx.Client, action: str, **payload: object) -> dict:
        headers = {**sqs_headers, "X-Amz-Target": f"AmazonSQS.{action}"}
        response = client.post(
            aws_url + "/", content=encode({"QueueUrl": queue_url, **payload}), headers=headers
        )
        response.raise_for_status()
        return response.json() if response.content else {}

    done = 0
    t0 = time.perf_counter()
    with httpx.Client() as client:
        while done < expected:
            answer = sqs(client, "ReceiveMessage", MaxNumberOfMessages=1, WaitTimeSeconds=1)
            for message in answer.get("Messages", []):
                for record in json.loads(message["Body"])["Records"]:
                    bucket = record["s3"]["bucket"]["name"]
                    key = record["s3"]["object"]["key"]
                    got = client.get(f"{aws_url}/{bucket}/{quote(key, safe='/')}")
                    got.raise_for_status()
                    data = got.content
                    if data[:2] == b"\x1f\x8b":
                        data = gzip.decompress(data)
                    parser = ObjectParser("alb", key)
                    cutter = LineCutter()
                    lines = []
                    for raw in [*cutter.feed(data), *cutter.close()]:
                        doc = parser.parse(raw)
                        action = {"create": {"_index": "serial", "_id": f"{key}:{raw.position}"}}
                        lines += [encode(action), encode(doc)]
                    response = client.post(
                        es_url + "/_bulk",
                        content=b"\n".join(lines) + b"\n",
                        headers={"Content-Type": "application/x-ndjson"},
                    )
                    if response.status_code != 200 or response.json()["errors"]:
                        raise RuntimeError(response.text[:300])
                sqs(client, "DeleteMessage", ReceiptHandle=message["ReceiptHandle"])
                done += 1
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 objects")
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument(
        "--aws",
        choices=["fast", "moto"],
        default="fast",
        help="S3/SQS: tests/fakes/fast_aws.py (default) or moto",
    )
    ap.add_argument(
        "--latency-ms",
        type=float,
        default=5.0,
        help="round trip added to every S3, SQS and bulk request (fast only)",
    )
    ap.add_argument("--profile", action="store_true", help="one more s3lb run, profiled")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.objects = 300
    h.header("small objects: one-line objects drained by s3lb run vs one at a time", args)

    aws_service = h.FastAws(args.latency_ms) if args.aws == "fast" else h.Aws()
    latency = args.latency_ms / 1000 if args.aws == "fast" else 0.0
    with (
        h.workdir("small", args.keep) as tmp,
        aws_service as aws,
        FakeEs(latency=latency) as es,
    ):
        bucket = aws.bucket()
        lines = h.alb_lines(args.objects, seed=7)
        objects = []
        t = time.perf_counter()
        for i, line in enumerate(lines):
            key = f"AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/01/s-{i:05d}.log.gz"
            body = h.gz(line + b"\n")
            objects.append((key, aws.put(bucket, key, body), len(body)))
        print(
            f"data: {args.objects} objects of one line uploaded in {time.perf_counter() - t:.0f}s"
        )

        rows: list[dict[str, Any]] = []

        def fill(per_message: int = 1) -> str:
            queue_url = aws.queue(VisibilityTimeout=300)
            aws.notify(queue_url, bucket, objects, per_message=per_message)
            return queue_url

        queue_url = fill()
        seconds = serial(aws.url, queue_url, es.url, args.objects)
        rows.append({"run": "one at a time (baseline)", "seconds": seconds})
        print(f"  one at a time: {seconds:.2f}s", flush=True)

        def drained(queue_url: str, daemon: h.Daemon) -> float:
            """When the queue was seen empty (asked every 20 ms). Not the daemon's
            counters: with processes > 1 they reach /metrics up to a second late."""
            deadline = time.monotonic() + 600
            while aws.counts(queue_url) != (0, 0):
                if not daemon.alive():
                    raise RuntimeError(f"s3lb exited:\n{daemon.log[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("the queue was not drained in 600 s")
                time.sleep(0.02)
            return time.perf_counter()

        def s3lb(
            label: str,
            per_message: int = 1,
            profile: Path | None = None,
            processes: int = h.CORES,
            **output: object,
        ) -> None:
            queue_url = fill(per_message)
            n = len(rows)
            es.clear()
            config = h.s3lb_config(
                queue_url,
                es.url,
                state_dir=tmp / f"state-{n}",
                metrics_port=h.free_port(),
                output=output,
                settings={"processes": processes},
            )
            # The queue is full before the daemon starts: the clock starts at its
            # "s3lb is running" line, which Daemon() waits for.
            daemon = h.Daemon(config, tmp / f"run-{n}", aws.env, profile=profile)
            t0 = time.perf_counter()
            cpu = h.tree_cpu(daemon.pid)
            with daemon:
                t1 = drained(queue_url, daemon)
                cpu = h.tree_cpu(daemon.pid) - cpu
                messages = -(-args.objects // per_message)
                daemon.wait_counter("messages_deleted", messages, timeout=60)
                m = daemon.metrics()
                if daemon.stop() != 0:
                    raise RuntimeError(daemon.log[-3000:])
            assert len(es.docs) == args.objects, (len(es.docs), args.objects)
            rows.append(
                {
                    "run": label,
                    "seconds": t1 - t0,
                    "s3lb cpu s": cpu,
                    "cpu us/object": cpu / args.objects * 1e6,
                    "bulks": int(m.get("s3lb_bulk_requests_total", 0)),
                    "checkpoint commits": int(m.get("s3lb_checkpoint_commits_total", 0)),
                }
            )
            print(f"  {label}: {t1 - t0:.2f}s", flush=True)

        s3lb(f"s3lb run, processes {h.CORES} (cores)")
        s3lb("s3lb run, processes 1", processes=1)
        s3lb("s3lb run, flush_interval 20ms", flush_interval="20ms")
        s3lb("s3lb run, 10 objects/message", per_message=10)

        base = rows[0]["seconds"]
        for row in rows:
            row["objects/s"] = args.objects / row["seconds"]
            row["x baseline"] = base / row["seconds"]
        print()
        print(
            f"{args.objects} one-line objects; S3/SQS: {args.aws}, round trip "
            f"{args.latency_ms if args.aws == 'fast' else 'moto'} ms; s3lb defaults: "
            f"max_inflight_messages 100, object_workers 8, worker 2, flush_interval 1s "
            f"(per process); "
            f"{h.CORES} cores"
        )
        if isinstance(aws, h.FastAws):
            print(f"requests answered by the fake AWS: {aws.stats()}")
        h.table(
            rows,
            [
                "run",
                "seconds",
                "objects/s",
                "x baseline",
                "s3lb cpu s",
                "cpu us/object",
                "bulks",
                "checkpoint commits",
            ],
        )
        value = rows[1]["x baseline"]
        h.ratio("small objects s3lb/one at a time", value, ">= 20", value >= 20)
        if args.profile:
            out = tmp / "small-profile.txt"
            s3lb("s3lb run, processes 1 (profiled)", profile=out, processes=1)
            print(f"\npyinstrument profile of s3lb, processes 1 ({out.name}):")
            print("\n".join(out.read_text().splitlines()[:90]))


if __name__ == "__main__":
    main()
