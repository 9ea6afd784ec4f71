"""Flat memory: the peak RSS of each process of ``s3lb run`` (the supervisor and every
worker, or the one process) while it ships one 10 MB object and one 1 GB object
(uncompressed sizes; gzip on S3), with the default ``processes: auto`` and with
``processes: 1``. Targets: every process < 100 MB at 1 GB, and each process's 1 GB
peak at most 1.2× its 10 MB peak.

Run: ``.venv/bin/python bench/memory.py [--quick]`` (``--quick``: 10 MB vs 200 MB)

- moto (S3 + SQS) in a process of its own holds the objects (that memory is moto's,
  not the daemon's); the 1 GB object is generated, gzipped and uploaded in 64 MiB
  parts as a stream, never whole in this process. Both objects are uploaded once and
  shipped by every daemon.
- The cluster is tests/fakes/null_sink.py (acknowledges every item) answering each bulk
  after ``--sink-latency`` seconds, so that the channels between readers and bulk
  workers fill, as with a busy cluster: the worst case for the daemon's buffers.
- A fresh daemon per object and process count, waited for until every worker runs.
  Each process's VmHWM (the kernel's own peak of its resident memory, pages shared
  with the supervisor after a fork included) is read from /proc/PID/status at the end
  of the object; its VmRSS is sampled every 50 ms too, and the tree's summed RSS.
  With one object, one worker reads it: the others idle (their peaks are shown).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

MB = 1_000_000
LIMIT_MB = 100


def upload(aws: h.Aws | h.FastAws, bucket: str, mb: int) -> tuple[str, str, int, int]:
    """An ALB object of ``mb`` MB (uncompressed), gzip level 1: (key, etag, size, lines)."""
    key = f"AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/01/{mb}MB.log.gz"
    t = time.perf_counter()
    lines = 0

    def counted(blocks: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal lines
        for block in blocks:
            lines += block.count(b"\n")
            yield block

    parts = h.gzip_stream(counted(h.alb_stream(mb * MB)), level=1)
    if isinstance(aws, h.Aws):
        etag = aws.put_stream(bucket, key, parts, 64 * 2**20)
        size = aws.s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    else:
        body = b"".join(parts)
        etag, size = aws.put(bucket, key, body), len(body)
    print(
        f"{mb} MB object: {lines:,} lines, {size / MB:.0f} MB gzip, "
        f"uploaded in {time.perf_counter() - t:.0f}s",
        flush=True,
    )
    return key, etag, size, lines


def ship(
    args: argparse.Namespace,
    tmp: Path,
    aws: h.Aws | h.FastAws,
    sink: h.NullSink,
    bucket: str,
    obj: tuple[str, str, int, int],
    mb: int,
    processes: str,
) -> dict[str, Any]:
    """One daemon ships one object: its row, with each process's peaks by role."""
    key, etag, size, lines = obj
    name = f"p{processes}-{mb}"
    queue_url = aws.queue(VisibilityTimeout=600)
    config = h.s3lb_config(
        queue_url,
        sink.url,
        state_dir=tmp / f"state-{name}",
        metrics_port=h.free_port(),
        settings={"processes": processes},
    )
    sink.reset()
    daemon = h.Daemon(config, tmp / f"run-{name}", aws.env)
    with daemon, h.RssSampler(daemon.pid) as rss:
        pids = h.tree(daemon.pid)
        if processes != "1":
            daemon.wait_for("every worker process is running", 60)
            pids = h.tree(daemon.pid)
        idle_kib = sum(h.status_kib(p, "VmRSS") for p in pids)
        t0 = time.perf_counter()
        cpu = h.tree_cpu(daemon.pid)
        aws.notify(queue_url, bucket, [(key, etag, size)])
        t1 = daemon.wait_counter("messages_deleted", 1, timeout=3600, poll=0.2)
        cpu = h.tree_cpu(daemon.pid) - cpu
        hwm = {p: h.status_kib(p, "VmHWM") for p in h.tree(daemon.pid)}
        cpu_by = {p: h.cpu_seconds(p) for p in hwm}
        indexed = daemon.counter("events_indexed")
        if daemon.stop() != 0:
            raise RuntimeError(daemon.log[-3000:])
    if indexed != lines:
        raise RuntimeError(f"{indexed} events indexed of {lines}")
    # Roles, so that runs compare: the worker that read the object (the most CPU), the
    # largest of the others.
    workers = sorted((p for p in hwm if p != daemon.pid), key=cpu_by.__getitem__, reverse=True)
    roles: dict[str, tuple[float, float]] = {}  # role: (VmHWM MB, sampled peak MB)
    for role, group in (
        ("supervisor" if workers else "process", [daemon.pid]),
        ("busy worker", workers[:1]),
        ("other workers (largest)", workers[1:]),
    ):
        if group:
            roles[role] = (
                max(hwm[p] for p in group) / 1024,
                max(rss.peaks.get(p, 0) for p in group) / 1024,
            )
    print(
        f"  processes {processes}, {mb} MB: "
        + ", ".join(f"{r} {v[0]:.1f} MB" for r, v in roles.items()),
        flush=True,
    )
    return {
        "processes": processes,
        "object": f"{mb} MB",
        "lines": lines,
        "seconds": t1 - t0,
        "lines/s": lines / (t1 - t0),
        "cpu s": cpu,
        "idle tree MB": idle_kib / 1024,
        "peak tree MB": rss.peak_kib / 1024,
        "roles": roles,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 MB vs 200 MB")
    ap.add_argument("--small-mb", type=int, default=10)
    ap.add_argument("--large-mb", type=int, default=1000)
    ap.add_argument("--processes", default="auto,1", help="process counts, comma-separated")
    ap.add_argument("--sink-latency", type=float, default=0.1, help="seconds per bulk")
    ap.add_argument("--aws", choices=["moto", "fast"], default="moto")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.large_mb = 200
    h.header("memory: peak RSS per process of s3lb run, a small and a large object", args)

    aws_service = h.Aws() if args.aws == "moto" else h.FastAws()
    with (
        h.workdir("memory", args.keep) as tmp,
        aws_service as aws,
        h.NullSink(latency=args.sink_latency) as sink,
    ):
        bucket = aws.bucket()
        sizes = (args.small_mb, args.large_mb)
        objects = {mb: upload(aws, bucket, mb) for mb in sizes}
        runs = {
            (p, mb): ship(args, tmp, aws, sink, bucket, objects[mb], mb, p)
            for p in args.processes.split(",")
            for mb in sizes
        }

    print(
        f"\nMB are MiB (2^20 bytes); VmHWM is the kernel's peak of each process, 'sampled' "
        f"its VmRSS every 50 ms; sink latency {args.sink_latency}s per bulk; {h.CORES} cores"
    )
    rows = []
    for (p, mb), run in runs.items():
        for role, (hwm, sampled) in run["roles"].items():
            rows.append(
                {"processes": p, "object": f"{mb} MB", "process": role, "VmHWM MB": hwm}
                | {"sampled peak MB": sampled}
            )
        rows.append(
            {"processes": p, "object": f"{mb} MB", "process": "tree (sum)"}
            | {k: run[k] for k in ("seconds", "lines/s", "cpu s", "idle tree MB", "peak tree MB")}
        )
    h.table(
        rows,
        [
            "processes",
            "object",
            "process",
            "VmHWM MB",
            "sampled peak MB",
            "idle tree MB",
            "peak tree MB",
            "seconds",
            "lines/s",
            "cpu s",
        ],
    )
    for p in args.processes.split(","):
        small, large = runs[p, args.small_mb]["roles"], runs[p, args.large_mb]["roles"]
        worst = max(v[0] for v in large.values())
        ratios = {role: large[role][0] / small[role][0] for role in large if role in small}
        value = max(ratios.values())
        print(
            f"processes {p}: largest process {worst:.1f} MB for {args.large_mb} MB "
            f"(target < {LIMIT_MB} MB: {'met' if worst < LIMIT_MB else 'NOT met'}); "
            f"{args.large_mb} MB / {args.small_mb} MB per process: "
            + ", ".join(f"{r} {v:.2f}" for r, v in ratios.items())
        )
        h.ratio(
            f"memory per process (worst) {args.large_mb} MB / {args.small_mb} MB object, "
            f"processes {p}",
            value,
            f"<= 1.2 and every process < {LIMIT_MB} MB",
            value <= 1.2 and worst < LIMIT_MB,
        )


if __name__ == "__main__":
    main()
