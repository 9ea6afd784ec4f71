"""Latency: one small object put and notified every 0.5 s, from its PUT to the bulk that
indexes it. Targets: p50 ≤ 50 ms, p99 ≤ 250 ms.

Run: ``.venv/bin/python bench/latency.py [--quick] [--aws fast|moto]``

- Every ``--every`` seconds (0.5) one gzip object of ``--lines`` ALB lines (3) is put
  and, right after the PUT returns, its S3 notification is sent to the queue (as S3
  does), for ``--seconds`` (60; ``--quick`` 20). ``s3lb run`` polls that queue with
  the settings a user gets by default (``wait_time`` 20 s, ``poll_frequency`` 1 s,
  ``flush_interval`` 1 s, two bulk workers, ``processes`` as it defaults): only the
  endpoints, the index and the state directory are set.
- The cluster is the real OpenSearch node (tests/opensearch_node.py, templates from
  ``s3lb setup``), behind a thin recording proxy in this process. What is measured is
  what "indexed" means for the daemon: the proxy notes when the node's answer to a
  ``_bulk`` arrives, and for each object the moment every one of its lines was
  acknowledged there (``201`` or ``409``); latency = that moment − the end of the PUT.
  A refresh (search visibility) is the cluster's business and not counted; polling
  ``_count`` would measure the poll, not the daemon. Each line carries a marker
  (``/lat-SEQ-LINE/`` in its request URL) that the proxy finds in the bulk body; the
  proxy's own cost (one loopback hop, a regex over the body) is inside the number.
- S3/SQS: ``fast`` (default) is tests/fakes/fast_aws.py answering each request after
  ``--latency-ms`` (5 ms, a round trip within a region), with long polling that wakes
  when a message arrives, as SQS does. ``moto`` is moto's server; its long poll and its
  ~10 ms of CPU per request are moto's, not SQS's: run both to see the difference.
- One object is put and waited for before the clock starts (index creation and first
  connections are not what is measured).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

from tests.support import configs

_MARK = re.compile(rb"lat-(\d+)-(\d+)")
_PORT = re.compile(r"(:\d+)/")


class Recorder:
    """A proxy in front of the node that notes when each marked line was acknowledged."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        #: (object, line) -> (when its bulk reached the proxy, when the answer came back).
        self.acked: dict[tuple[int, int], tuple[float, float]] = {}
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, payload = recorder.forward(
                    self.command, self.path, dict(self.headers.items()), body
                )
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._local = threading.local()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.upstream.netloc, timeout=120)
        return conn

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
        conn = self._connection()
        sent_at = time.perf_counter()
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self._local.conn = None
            conn.close()
            raise
        now = time.perf_counter()
        if path.split("?", 1)[0].endswith("/_bulk") and response.status == 200:
            sent = gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body
            answer = payload
            if response.getheader("Content-Encoding") == "gzip":
                answer = gzip.decompress(payload)
            self._note(sent, answer, sent_at, now)
        return response.status, response.getheaders(), payload

    def _note(self, body: bytes, payload: bytes, sent_at: float, now: float) -> None:
        lines = body.split(b"\n")
        marks = [_MARK.search(source) for source in lines[1::2]]
        items = json.loads(payload).get("items", [])
        with self.lock:
            for mark, item in zip(marks, items, strict=False):
                status = next(iter(item.values())).get("status", 0)
                if mark and (200 <= status < 300 or status == 409):
                    self.acked.setdefault((int(mark.group(1)), int(mark.group(2))), (sent_at, now))

    def indexed_at(self, seq: int, lines: int) -> tuple[float, float] | None:
        """``(sent, acknowledged)`` of the bulk that acknowledged the last line of object
        ``seq``, or None."""
        with self.lock:
            times = [self.acked.get((seq, j)) for j in range(lines)]
        if any(t is None for t in times):
            return None
        return max((t for t in times if t is not None), key=lambda t: t[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def marked_lines(seq: int, count: int) -> bytes:
    """``count`` ALB lines whose request URLs carry ``/lat-SEQ-LINE/``."""
    out = []
    for j, line in enumerate(h.alb_lines(count, seed=seq + 1)):
        text = line.decode()
        request = text.index('"') + 1  # the request field: "GET scheme://host:port/path …"
        head, tail = text[:request], text[request:]
        out.append(head + _PORT.sub(rf"\1/lat-{seq}-{j}/", tail, count=1))
    return ("\n".join(out) + "\n").encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 seconds")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--every", type=float, default=0.5, help="seconds between two objects")
    ap.add_argument("--lines", type=int, default=3, help="ALB lines per object")
    ap.add_argument("--aws", choices=["fast", "moto"], default="fast")
    ap.add_argument("--latency-ms", type=float, default=5.0, help="fast only")
    ap.add_argument("--heap", default="512m", help="the node's JVM heap")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.seconds = 20.0
    h.header("latency: put → bulk-acknowledged, one small object every 0.5 s", args)

    aws_service = h.FastAws(args.latency_ms) if args.aws == "fast" else h.Aws()
    with (
        h.workdir("latency", args.keep) as tmp,
        aws_service as aws,
        h.opensearch(tmp / "node", heap=args.heap) as (node_url, _jvm),
    ):
        recorder = Recorder(node_url)
        try:
            measure(args, tmp, aws, recorder)
        finally:
            recorder.close()


def measure(args: argparse.Namespace, tmp: Path, aws: Any, recorder: Recorder) -> None:
    bucket = aws.bucket()
    queue_url = aws.queue(VisibilityTimeout=300)
    config = configs.s3lb_config(
        state_dir=tmp / "state",
        queues=[queue_url],
        log_format="alb",
        input_options={"poll_frequency": None},
        es_url=recorder.url,
        es={"index": "bench-latency-%{+yyyy.MM.dd}", **dict.fromkeys(configs.ES_DEFAULTS)},
        metrics=f"127.0.0.1:{h.free_port()}",
        wait_time=None,
        shutdown_timeout=None,
        processes=None,  # the default (auto): the builder pins 1 for tests
    )
    config_file = tmp / "setup.yml"
    config_file.write_text(config)
    setup = [h.PYTHON, "-m", "s3lb", "setup", "-c", str(config_file)]
    subprocess.run(setup, env=aws.env, check=True, capture_output=True)

    def put(seq: int) -> float:
        key = (
            "AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/01/"
            f"123456789012_elasticloadbalancing_eu-west-1_app.lat_{seq:06d}.log.gz"
        )
        body = h.gz(marked_lines(seq, args.lines))
        etag = aws.put(bucket, key, body)
        done = time.perf_counter()
        aws.notify(queue_url, bucket, [(key, etag, len(body))])
        return done

    def wait_indexed(seq: int, timeout: float) -> tuple[float, float] | None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            at = recorder.indexed_at(seq, args.lines)
            if at is not None:
                return at
            time.sleep(0.01)
        return None

    with h.Daemon(config, tmp / "run", aws.env) as daemon:
        warm = put(0)
        warmed = wait_indexed(0, 60)
        if warmed is None:
            raise RuntimeError("the warm-up object was not indexed in 60 s:\n" + daemon.log[-3000:])
        print(f"warm-up object indexed after {(warmed[1] - warm) * 1000:.0f} ms")
        count = int(args.seconds / args.every)
        put_at: dict[int, float] = {}
        start = time.perf_counter()
        for seq in range(1, count + 1):
            time.sleep(max(0.0, start + (seq - 1) * args.every - time.perf_counter()))
            put_at[seq] = put(seq)
        latencies, cluster, missing = [], [], 0
        for seq, at in put_at.items():
            indexed = wait_indexed(seq, 30)
            if indexed is None:
                missing += 1
            else:
                latencies.append((indexed[1] - at) * 1000)
                cluster.append((indexed[1] - indexed[0]) * 1000)
        metrics = daemon.metrics()
        if daemon.stop() != 0:
            raise RuntimeError(daemon.log[-3000:])
    report(args, latencies, cluster, missing, metrics)


def report(
    args: argparse.Namespace,
    latencies: list[float],
    cluster: list[float],
    missing: int,
    metrics: dict[str, float],
) -> None:
    if not latencies:
        raise SystemExit("no object was indexed")
    p50, p90, p99 = (percentile(latencies, q) for q in (50, 90, 99))
    aws = f"fast_aws, {args.latency_ms:g} ms round trip" if args.aws == "fast" else "moto"
    print(
        f"{len(latencies)} objects of {args.lines} lines, one every {args.every:g} s for "
        f"{args.seconds:g} s; S3/SQS: {aws}; s3lb defaults (processes: default); "
        f"{h.CORES} cores; not indexed within 30 s: {missing}"
    )
    print(
        f"put → bulk-acknowledged ms: min {min(latencies):.1f}  p50 {p50:.1f}  p90 {p90:.1f}  "
        f"p99 {p99:.1f}  max {max(latencies):.1f}  mean {statistics.fmean(latencies):.1f}"
    )
    c50, c99 = percentile(cluster, 50), percentile(cluster, 99)
    print(
        f"of which the bulk at the node (proxy → node → proxy) ms: p50 {c50:.1f}  "
        f"p99 {c99:.1f}; before the bulk (SQS, S3, parsing, batching): p50 "
        f"{percentile([a - b for a, b in zip(latencies, cluster, strict=True)], 50):.1f}"
    )
    print(
        f"daemon: {int(metrics.get('s3lb_bulk_requests_total', 0))} bulks, "
        f"{int(metrics.get('s3lb_messages_deleted_total', 0))} messages deleted"
    )
    h.ratio("latency p50 ms", p50, "<= 50", p50 <= 50 and not missing)
    h.ratio("latency p99 ms", p99, "<= 250", p99 <= 250 and not missing)


if __name__ == "__main__":
    main()
