"""End to end: N gzip ALB objects announced on SQS, through ``s3lb run``, into a real
OpenSearch 2.19 node; against a direct bulk loader sending the same documents to the
same node with the same bulk size and concurrency. Target: s3lb ≥ 0.9× the loader.

Run: ``.venv/bin/python bench/e2e.py [--quick] [--profile]`` (Java 17 and Maven for the
node, built on first use by tests/opensearch_node.py).

- moto (S3 + SQS) runs in a process of its own; the objects are uploaded first, then the
  daemon is started, and the clock runs from sending the notifications (ten per
  SendMessageBatch, one object each, as S3 sends them) until the daemon's
  ``s3lb_events_indexed_total`` (scraped every 100 ms) counts every line.
- The loader (the baseline): the documents s3lb's parser makes of the same objects
  (what ``s3lb parse -f alb`` prints), with 32-hex ``_id`` s like s3lb's, cut into
  ``create`` bulk bodies of ``--bulk`` documents *before* the clock starts;
  ``--workers`` threads POST them over keep-alive connections. It is the node's own
  ceiling for this data, less one loader.
- Both write to indices ``bench-base-*`` / ``bench-s3lb-*`` under the index template
  ``s3lb setup`` installs (the mappings of the alb format); each index is deleted after
  its round; a warm-up load of the same documents (JIT, caches) is not counted; loader
  and s3lb alternate within each round.
- CPU seconds of each party are read from /proc: the daemon's process tree, the
  node's JVM, the loader (this process) and moto.

``--sink null`` replaces the node by tests/fakes/null_sink.py (acknowledges everything at once):
then the figure is s3lb's own ceiling on this machine, not a ratio to the cluster.
``--profile`` adds one s3lb round under pyinstrument and prints its hot path.
"""

from __future__ import annotations

import argparse
import http.client
import queue
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

DAY = "2024.05.01"


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def documents(text: bytes) -> list[bytes]:
    """The ``_source`` s s3lb sends for an ALB object's ``text`` (what ``s3lb parse -f
    alb`` prints), from s3lb's own parser and a reused msgspec encoder."""
    import msgspec

    from s3lb.pipeline.framing import LineCutter, RawRecord
    from s3lb.pipeline.parsing import ObjectParser

    parser = ObjectParser("alb")
    encode = msgspec.json.Encoder().encode
    cutter = LineCutter()
    out = []
    records: list[RawRecord] = [*cutter.feed(text), *cutter.close()]
    for record in records:
        doc = parser.parse(record)
        if not isinstance(doc, dict):
            raise RuntimeError(f"line {record.position} did not parse: {doc}")
        out.append(encode(doc))
    return out


def build_bodies(texts: list[bytes], index: str, bulk: int) -> tuple[list[bytes], int]:
    """The loader's request bodies: the documents of every object as ``create`` actions
    of ``bulk`` documents; returns (bodies, documents)."""
    sources = [doc for text in texts for doc in documents(text)]
    ids = h.doc_ids(index, len(sources))
    bodies = []
    for start in range(0, len(sources), bulk):
        parts = []
        for doc_id, source in zip(
            ids[start : start + bulk], sources[start : start + bulk], strict=True
        ):
            parts.append(
                b'{"create":{"_index":"%s","_id":"%s"}}\n' % (index.encode(), doc_id.encode())
            )
            parts.append(source + b"\n")
        bodies.append(b"".join(parts))
    return bodies, len(sources)


def load(url: str, bodies: list[bytes], workers: int) -> float:
    """POST every body with ``workers`` threads on keep-alive connections; seconds."""
    parts = urlsplit(url)
    work: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    for _ in range(workers):
        work.put(None)
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        conn.connect()
        # As trio (hence s3lb) does: without it, Nagle holds each body's last segment.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while (body := work.get()) is not None:
            conn.request("POST", "/_bulk", body, {"Content-Type": "application/x-ndjson"})
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200 or b'"errors":false' not in payload[:200]:
                errors.append(f"HTTP {response.status}: {payload[:300]!r}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"the loader got errors: {errors[:3]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 objects of 5,000 lines, 1 round")
    ap.add_argument("--objects", type=int, default=10)
    ap.add_argument("--lines", type=int, default=20_000, help="lines per object")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bulk", type=int, default=1600, help="bulk_max_size (both sides)")
    ap.add_argument("--workers", type=int, default=2, help="output worker (both sides)")
    ap.add_argument("--object-workers", type=int, default=8)
    ap.add_argument("--compression", type=int, default=0, help="s3lb compression_level")
    ap.add_argument("--sink", choices=["opensearch", "null"], default="opensearch")
    ap.add_argument("--heap", default="1g", help="the node's JVM heap")
    ap.add_argument("--profile", action="store_true", help="one more s3lb round, profiled")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.objects, args.lines, args.rounds = 8, 5000, 1
    h.header("e2e: S3/SQS (moto) → s3lb run → OpenSearch, vs a direct bulk loader", args)

    with h.workdir("e2e", args.keep) as tmp, h.Aws() as aws:
        if args.sink == "opensearch":
            node = h.opensearch(tmp / "node", heap=args.heap)
        else:
            node = _null_node()
        with node as (es_url, jvm):
            run(args, tmp, aws, es_url, jvm)


class _null_node:
    def __enter__(self) -> tuple[str, int | None]:
        self.sink = h.NullSink()
        return self.sink.url, self.sink.process.pid

    def __exit__(self, *exc: object) -> None:
        self.sink.close()


def run(args: argparse.Namespace, tmp: Path, aws: h.Aws, es_url: str, jvm: int | None) -> None:
    cluster = "null sink" if args.sink == "null" else "node"
    # -- data ------------------------------------------------------------------------
    t_gen = time.perf_counter()
    bucket = aws.bucket()
    texts = [h.alb_text(args.lines, seed=i + 1) for i in range(args.objects)]
    objects = []
    for i, text in enumerate(texts):
        key = f"AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/01/obj-{i:04d}.log.gz"
        body = h.gz(text)
        objects.append((key, aws.put(bucket, key, body), len(body)))
    plain_mb = sum(map(len, texts)) / 1e6
    gz_mb = sum(o[2] for o in objects) / 1e6
    base_bodies, total = build_bodies(texts, f"bench-base-{DAY}", args.bulk)
    warm_bodies, _ = build_bodies(texts, f"bench-warm-{DAY}", args.bulk)
    del texts
    print(
        f"data: {args.objects} objects x {args.lines:,} lines = {total:,} documents, "
        f"{plain_mb:.0f} MB plain, {gz_mb:.1f} MB gzip "
        f"(prepared in {time.perf_counter() - t_gen:.0f}s)"
    )

    output = {
        "bulk_max_size": args.bulk,
        "worker": args.workers,
        "compression_level": args.compression,
    }
    settings = {"object_workers": args.object_workers}
    env = aws.env
    if args.sink == "opensearch":
        cfg = tmp / "setup.yml"
        cfg.write_text(h.s3lb_config("http://x", es_url, state_dir=tmp / "setup", metrics_port=1))
        subprocess.run(
            [h.PYTHON, "-m", "s3lb", "setup", "-c", str(cfg), "--index-pattern", "bench-*"],
            env=env,
            check=True,
            capture_output=True,
        )

    def drop(index: str) -> None:
        if args.sink == "opensearch":
            h.es_request(f"{es_url}/{index}", "DELETE")

    def baseline() -> dict[str, object]:
        cpu_jvm, cpu_self = h.tree_cpu(jvm) if jvm else 0.0, _self_cpu()
        seconds = load(es_url, base_bodies, args.workers)
        row = {
            "run": "loader (baseline)",
            "seconds": seconds,
            "docs/s": total / seconds,
            f"{cluster} cpu s": (h.tree_cpu(jvm) - cpu_jvm) if jvm else 0.0,
            "shipper cpu s": _self_cpu() - cpu_self,
            "moto cpu s": 0.0,
        }
        drop(f"bench-base-{DAY}")
        return row

    def s3lb_round(n: int, profile: Path | None = None) -> dict[str, object]:
        queue_url = aws.queue(VisibilityTimeout=300)
        config = h.s3lb_config(
            queue_url,
            es_url,
            state_dir=tmp / f"state-{n}",
            metrics_port=h.free_port(),
            settings=settings,
            output=output,
        )
        with h.Daemon(config, tmp / f"run-{n}", env, profile=profile) as daemon:
            cpu_d = h.tree_cpu(daemon.pid)
            cpu_jvm, cpu_moto = h.tree_cpu(jvm) if jvm else 0.0, h.tree_cpu(aws.pid)
            t0 = time.perf_counter()
            aws.notify(queue_url, bucket, objects)
            t1 = daemon.wait_counter("events_indexed", total, timeout=1800, poll=0.1)
            row = {
                "run": "s3lb run" + (" (profiled)" if profile else ""),
                "seconds": t1 - t0,
                "docs/s": total / (t1 - t0),
                f"{cluster} cpu s": (h.tree_cpu(jvm) - cpu_jvm) if jvm else 0.0,
                "shipper cpu s": h.tree_cpu(daemon.pid) - cpu_d,
                "moto cpu s": h.tree_cpu(aws.pid) - cpu_moto,
            }
            daemon.wait_counter("messages_deleted", len(objects), timeout=120)
            m = daemon.metrics()
            row["bulks"] = int(m.get("s3lb_bulk_requests_total", 0))
            if daemon.stop() != 0:
                raise RuntimeError(daemon.log[-3000:])
        drop(f"bench-s3lb-{DAY}")
        return row

    print("warm-up (not counted) ...", flush=True)
    if args.sink == "opensearch":
        load(es_url, warm_bodies, args.workers)
    drop(f"bench-warm-{DAY}")

    rows = []
    for r in range(args.rounds):
        rows.append(baseline())
        print(f"  round {r + 1}: loader {rows[-1]['seconds']:.2f}s", flush=True)
        rows.append(s3lb_round(r))
        print(f"  round {r + 1}: s3lb   {rows[-1]['seconds']:.2f}s", flush=True)
    columns = [
        "run",
        "seconds",
        "docs/s",
        f"{cluster} cpu s",
        "shipper cpu s",
        "moto cpu s",
        "bulks",
    ]
    print()
    print(f"{total:,} documents; bulk {args.bulk}, {args.workers} workers; {h.CORES} cores")
    h.table(rows, columns)
    pairs = [b["seconds"] / s["seconds"] for b, s in zip(rows[0::2], rows[1::2], strict=True)]
    s3lb_cpu = min(r["shipper cpu s"] for r in rows if r["run"].startswith("s3lb"))
    print(
        f"s3lb CPU per document: {s3lb_cpu / total * 1e6:.1f} us "
        f"(one core would ship at most {total / s3lb_cpu:,.0f} docs/s)"
    )
    print(
        "per-round ratios (loader seconds / s3lb seconds): " + ", ".join(f"{p:.2f}" for p in pairs)
    )
    value = statistics.median(pairs)
    if args.sink == "null":
        print(
            f"RATIO e2e s3lb/loader to a null sink: {value:.2f} "
            "(s3lb's own ceiling; the target is against the node)"
        )
    else:
        h.ratio("e2e s3lb/loader throughput (median of rounds)", value, ">= 0.9", value >= 0.9)

    if args.profile:
        out = tmp / "e2e-profile.txt"
        s3lb_round(99, profile=out)
        print(f"\npyinstrument profile of one s3lb round ({out.name}), top of the tree:")
        print("\n".join(out.read_text().splitlines()[:80]))


if __name__ == "__main__":
    main()
