"""Flat memory: the peak RSS of ``s3lb run`` while it ships one 10 MB object and one
1 GB object (uncompressed sizes; gzip on S3). Targets: peak < 100 MB, and the 1 GB
peak at most 1.2× the 10 MB peak.

Run: ``.venv/bin/python bench/memory.py [--quick]`` (``--quick``: 10 MB vs 200 MB)

- moto (S3 + SQS) in a process of its own holds the objects (that memory is moto's,
  not the daemon's); the 1 GB object is generated, gzipped and uploaded in 64 MiB
  parts as a stream, never whole in this process.
- The cluster is tests/fakes/null_sink.py (acknowledges every item) answering each bulk after
  ``--sink-latency`` seconds, so that the channels between readers and bulk workers
  fill, as with a busy cluster: the worst case for the daemon's buffers.
- A fresh daemon per object. Its RSS (summed over its process tree: worker processes
  would count) is read from /proc/PID/status every 50 ms from its start to the end
  of the object; VmHWM (the kernel's own peak) is shown beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

MB = 1_000_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 MB vs 200 MB")
    ap.add_argument("--small-mb", type=int, default=10)
    ap.add_argument("--large-mb", type=int, default=1000)
    ap.add_argument("--sink-latency", type=float, default=0.1, help="seconds per bulk")
    ap.add_argument("--aws", choices=["moto", "fast"], default="moto")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.large_mb = 200
    h.header("memory: peak RSS of s3lb run for a small and a large object", args)

    aws_service = h.Aws() if args.aws == "moto" else h.FastAws()
    with (
        h.workdir("memory", args.keep) as tmp,
        aws_service as aws,
        h.NullSink(latency=args.sink_latency) as sink,
    ):
        bucket = aws.bucket()
        rows = []
        for mb in (args.small_mb, args.large_mb):
            key = f"AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/01/{mb}MB.log.gz"
            t = time.perf_counter()
            lines = 0

            def counted(blocks):  # type: ignore[no-untyped-def]
                nonlocal lines
                for block in blocks:
                    lines += block.count(b"\n")
                    yield block

            parts = h.gzip_stream(counted(h.alb_stream(mb * MB)), level=1)
            if isinstance(aws, h.Aws):
                etag = aws.put_stream(bucket, key, parts, 64 * 2**20)
            else:
                etag = aws.put(bucket, key, b"".join(parts))
            size = (
                aws.s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
                if isinstance(aws, h.Aws)
                else 0
            )
            print(
                f"{mb} MB object: {lines:,} lines, {size / MB:.0f} MB gzip, "
                f"uploaded in {time.perf_counter() - t:.0f}s",
                flush=True,
            )
            queue_url = aws.queue(VisibilityTimeout=600)
            config = h.s3lb_config(
                queue_url,
                sink.url,
                state_dir=tmp / f"state-{mb}",
                metrics_port=h.free_port(),
            )
            sink.reset()
            daemon = h.Daemon(config, tmp / f"run-{mb}", aws.env)
            with daemon, h.RssSampler(daemon.pid) as rss:
                idle_kib = h.status_kib(daemon.pid, "VmRSS")
                t0 = time.perf_counter()
                cpu = h.tree_cpu(daemon.pid)
                aws.notify(queue_url, bucket, [(key, etag, size)])
                t1 = daemon.wait_counter("messages_deleted", 1, timeout=3600, poll=0.2)
                cpu = h.tree_cpu(daemon.pid) - cpu
                hwm = sum(h.status_kib(p, "VmHWM") for p in h.tree(daemon.pid))
                indexed = daemon.counter("events_indexed")
                if daemon.stop() != 0:
                    raise RuntimeError(daemon.log[-3000:])
            if indexed != lines:
                raise RuntimeError(f"{indexed} events indexed of {lines}")
            rows.append(
                {
                    "object": f"{mb} MB",
                    "lines": lines,
                    "seconds": t1 - t0,
                    "lines/s": lines / (t1 - t0),
                    "cpu s": cpu,
                    "idle MB": idle_kib / 1024,
                    "peak RSS MB": rss.peak_kib / 1024,
                    "VmHWM MB": hwm / 1024,
                    "samples": len(rss.samples),
                }
            )
            print(f"  peak RSS {rss.peak_kib / 1024:.1f} MB", flush=True)
            aws.s3.delete_object(Bucket=bucket, Key=key) if isinstance(aws, h.Aws) else None

        print()
        print(
            f"RSS in MB (MiB of 2^20 bytes), the daemon's process tree; sink latency "
            f"{args.sink_latency}s per bulk; {h.CORES} cores"
        )
        h.table(
            rows,
            [
                "object",
                "lines",
                "seconds",
                "lines/s",
                "cpu s",
                "idle MB",
                "peak RSS MB",
                "VmHWM MB",
                "samples",
            ],
        )
        small, large = rows[0]["peak RSS MB"], rows[1]["peak RSS MB"]
        print(
            f"peak RSS {large:.1f} MB for {args.large_mb} MB "
            f"(target < 100 MB: {'met' if large < 100 else 'NOT met'})"
        )
        value = large / small
        h.ratio(
            f"memory peak {args.large_mb} MB / {args.small_mb} MB object",
            value,
            "<= 1.2",
            value <= 1.2 and large < 100,
        )


if __name__ == "__main__":
    main()
