"""End to end: N gzip ALB objects announced on SQS, through ``s3lb run``, into a real
OpenSearch 2.19 node; against a direct bulk loader sending the same documents to the
same node with the same bulk size and concurrency. Target: s3lb ≥ 0.95× the loader
with the node and the shipper on disjoint cores.

Run: ``.venv/bin/python bench/e2e.py [--quick] [--pinning both|disjoint|shared]
[--profile]`` (Java 17 and Maven for the node, built on first use by
tests/opensearch_node.py).

- Pinning. A cluster has cores of its own, so the result is measured with the node on
  one half of the cores this process may use and the shipper on the other (2 cores:
  the node on {0}, the shipper on {1}). The node's JVM is started on its half (it sizes
  its thread pools by it) and every one of its threads is checked. The shipper's half
  holds s3lb (started there: its worker processes inherit it, and ``processes: auto``
  resolves to that half's cores, printed), moto and this process (the loader's threads,
  the clock). ``--pinning shared`` (every party on every core, a node started on all of
  them) is printed as information; ``both`` (the default) runs shared, then disjoint,
  each with a node of its own. With a single core there are no disjoint halves: shared
  only, said so.
- The asymmetry: moto (S3 + SQS) serves s3lb's receives, GETs and deletes, and sits
  with the shipper because that is where AWS's cost lands (s3lb's side of the wire);
  the loader does not use moto, so during s3lb's rounds the shipper's half also runs
  moto (its CPU seconds are printed), during the loader's it does not.
- moto runs in a process of its own; the objects are uploaded first, then the daemon
  is started (and waited for until every worker process runs), and the clock runs from
  sending the notifications (ten per SendMessageBatch, one object each, as S3 sends
  them) until the daemon's ``s3lb_events_indexed_total`` (scraped every 100 ms) counts
  every line ("first docs s": until it counts the first).
- The loader (the baseline): the documents s3lb's parser makes of the same objects
  (what ``s3lb parse -f alb`` prints), with 32-hex ``_id`` s like s3lb's, cut into
  ``create`` bulk bodies of ``--bulk`` documents *before* the clock starts;
  ``--workers`` × (s3lb's processes) threads POST them over keep-alive connections, as
  many bulks in flight as s3lb's bulk workers. It is the node's own ceiling for this
  data, less one loader.
- Both write to indices ``bench-base-*`` / ``bench-s3lb-*`` under the index template
  ``s3lb setup`` installs (the mappings of the alb format); each index is deleted after
  its round. ``--warmup`` loads of the same documents are not counted: a node on one
  core is still compiling (its CPU per document falls by half over the first three
  loads), and the party that ran first paid for it; then one s3lb round, not counted
  either (its filtered bulk answers take paths of the node the loader's do not). The
  party going first alternates from round to round; the ratio is the median of the
  rounds' ratios, five by default: the node's CPU for the same 200,000 documents moves
  by ±8 % from round to round whoever sends them (its refreshes alone took 3.5-4.5 s
  of a ~10 s round in one sitting), so three rounds left the median at the mercy of one.
- CPU seconds of each party are read from /proc: the daemon's process tree, the
  node's JVM, the loader (this process) and moto; "busy %" is a party's CPU seconds
  over the round's seconds times its cores (the node's half; the shipper's half for
  s3lb or the loader plus moto).

``--sink null`` replaces the node by tests/fakes/null_sink.py (acknowledges everything at once):
then the figure is s3lb's own ceiling on this machine, not a ratio to the cluster.
``--profile`` adds one s3lb round under pyinstrument (in the last pinning) and prints
its hot path: that of the process started, the supervisor when ``processes`` resolves
to more than one (with 2 cores, disjoint halves run one process).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import queue
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
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
        conn = http.client.HTTPConnection(parts.netloc, timeout=120)
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
    ap.add_argument("--quick", action="store_true", help="8 objects of 5,000 lines, 2 rounds")
    ap.add_argument("--objects", type=int, default=10)
    ap.add_argument("--lines", type=int, default=20_000, help="lines per object")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3, help="loads of the node before rounds")
    ap.add_argument("--bulk", type=int, default=1600, help="bulk_max_size (both sides)")
    ap.add_argument("--workers", type=int, default=2, help="output worker (both sides)")
    ap.add_argument("--object-workers", type=int, default=8)
    ap.add_argument("--processes", default="auto", help="s3lb processes (auto: its cores)")
    ap.add_argument("--compression", type=int, default=0, help="s3lb compression_level")
    ap.add_argument("--pinning", choices=["both", "disjoint", "shared"], default="both")
    ap.add_argument("--sink", choices=["opensearch", "null"], default="opensearch")
    ap.add_argument("--heap", default="1g", help="the node's JVM heap")
    ap.add_argument("--profile", action="store_true", help="one more s3lb round, profiled")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.objects, args.lines, args.rounds = 8, 5000, 2
    h.header("e2e: S3/SQS (moto) → s3lb run → OpenSearch, vs a direct bulk loader", args)
    every = os.sched_getaffinity(0)
    halves = h.core_sets()
    pinnings: list[tuple[str, set[int], set[int]]] = []
    if args.pinning != "disjoint" or halves is None:
        pinnings.append(("shared", every, every))
    if args.pinning != "shared":
        if halves is None:
            print("a single core: no disjoint sets for the node and the shipper; shared only")
        else:
            pinnings.append(("disjoint", *halves))

    with h.workdir("e2e", args.keep) as tmp, h.Aws() as aws:
        data = Data(args, aws)
        results = []
        for n, (name, node_cpus, ship_cpus) in enumerate(pinnings):
            pinning = Pinning(name, node_cpus, ship_cpus)
            with pinning.services(args, tmp / name, aws) as (es_url, jvm):
                rounds = Rounds(args, tmp / name, aws, data, pinning, es_url, jvm)
                rounds.run(profile=args.profile and n == len(pinnings) - 1)
            results.append(rounds)
        print()
        for rounds in results:
            rounds.report()
        verdict(args, results)


class Data:
    """The objects on S3 (moto), and the loader's bulk bodies of the same documents."""

    def __init__(self, args: argparse.Namespace, aws: h.Aws) -> None:
        t_gen = time.perf_counter()
        self.bucket = aws.bucket()
        texts = [h.alb_text(args.lines, seed=i + 1) for i in range(args.objects)]
        self.objects = []
        for i, text in enumerate(texts):
            key = f"AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/01/o-{i:04d}.log.gz"
            body = h.gz(text)
            self.objects.append((key, aws.put(self.bucket, key, body), len(body)))
        self.base_bodies, self.total = build_bodies(texts, f"bench-base-{DAY}", args.bulk)
        self.warm_bodies, _ = build_bodies(texts, f"bench-warm-{DAY}", args.bulk)
        print(
            f"data: {args.objects} objects x {args.lines:,} lines = {self.total:,} documents, "
            f"{sum(map(len, texts)) / 1e6:.0f} MB plain, "
            f"{sum(o[2] for o in self.objects) / 1e6:.1f} MB gzip "
            f"(prepared in {time.perf_counter() - t_gen:.0f}s)"
        )


class Pinning:
    """Where each party runs: the node on ``node``, the shipper (s3lb or the loader, this
    process, moto) on ``ship``; the same set twice when shared."""

    def __init__(self, name: str, node: set[int], ship: set[int]) -> None:
        self.name, self.node, self.ship = name, node, ship

    @contextlib.contextmanager
    def services(
        self, args: argparse.Namespace, tmp: Path, aws: h.Aws
    ) -> Iterator[tuple[str, int | None]]:
        """A node (or null sink) started on ``node``; this process and moto moved to
        ``ship`` (s3lb, started from here, inherits it)."""
        print(
            f"\n-- pinning {self.name}: node on cores {_cores(self.node)}, "
            f"shipper (s3lb or the loader, moto, this process) on {_cores(self.ship)}",
            flush=True,
        )
        h.pin(os.getpid(), self.ship, children=False)
        h.pin(aws.pid, self.ship)
        tmp.mkdir(parents=True)
        with contextlib.ExitStack() as stack:
            if args.sink == "opensearch":
                es_url, jvm = stack.enter_context(
                    h.opensearch(tmp / "node", heap=args.heap, cpus=self.node)
                )
            else:
                with h.pinned(self.node):
                    sink = stack.enter_context(h.NullSink())
                es_url, jvm = sink.url, sink.pid
            print(
                f"threads: node (pid {jvm}) on {_cores(h.thread_cpus(jvm) if jvm else set())}, "
                f"moto on {_cores(h.thread_cpus(aws.pid))}, this process on "
                f"{_cores(h.thread_cpus(os.getpid(), children=False))}",
                flush=True,
            )
            yield es_url, jvm


def _cores(cpus: set[int]) -> str:
    return "{" + ",".join(map(str, sorted(cpus))) + "}"


class Rounds:
    """Warm-up, then loader and s3lb alternating, ``--rounds`` times, on one node."""

    def __init__(
        self,
        args: argparse.Namespace,
        tmp: Path,
        aws: h.Aws,
        data: Data,
        pinning: Pinning,
        es_url: str,
        jvm: int | None,
    ) -> None:
        self.args, self.tmp, self.aws, self.data = args, tmp, aws, data
        self.pinning, self.es_url, self.jvm = pinning, es_url, jvm
        self.cluster = "null sink" if args.sink == "null" else "node"
        # What ``processes: auto`` resolves to here: the cores s3lb inherits.
        self.processes = len(pinning.ship) if args.processes == "auto" else int(args.processes)
        self.loader_threads = args.workers * self.processes
        self.rows: list[dict[str, Any]] = []
        self.seen_processes: set[int] = set()

    def run(self, profile: bool) -> None:
        if self.args.sink == "opensearch":
            cfg = self.tmp / "setup.yml"
            cfg.write_text(
                h.s3lb_config(
                    self.aws.queue(), self.es_url, state_dir=self.tmp / "s", metrics_port=1
                )
            )
            setup = subprocess.run(
                [h.PYTHON, "-m", "s3lb", "setup", "-c", str(cfg), "--index-pattern", "bench-*"],
                env=self.aws.env,
                capture_output=True,
                text=True,
            )
            if setup.returncode:
                raise RuntimeError(f"s3lb setup failed: {setup.stdout}{setup.stderr}")
            for n in range(self.args.warmup):
                seconds = load(self.es_url, self.data.warm_bodies, self.loader_threads)
                print(f"warm-up {n + 1} (not counted): {seconds:.2f}s", flush=True)
                self.drop(f"bench-warm-{DAY}")
            if self.args.warmup:
                # s3lb's requests take paths of the node the loader's do not (filter_path
                # answers): compiled during a round of its own, not in the first counted.
                row = self.s3lb_round(-1)
                print(f"warm-up s3lb (not counted): {row['seconds']:.2f}s", flush=True)
        for r in range(self.args.rounds):
            # Rows in (loader, s3lb) pairs; who goes first alternates.
            first, second = (self.baseline, self.s3lb_round)[:: 1 if r % 2 == 0 else -1]
            rows = [first(r), second(r)][:: 1 if r % 2 == 0 else -1]
            self.rows += rows
            print(
                f"  round {r + 1}: loader {rows[0]['seconds']:.2f}s, "
                f"s3lb {rows[1]['seconds']:.2f}s",
                flush=True,
            )
        if profile:
            out = self.tmp / "e2e-profile.txt"
            self.s3lb_round(99, profile=out)
            print(f"\npyinstrument profile of one s3lb round ({out.name}), top of the tree:")
            print("\n".join(out.read_text().splitlines()[:80]))

    def drop(self, index: str) -> None:
        if self.args.sink == "opensearch":
            h.es_request(f"{self.es_url}/{index}", "DELETE")

    def _cpu(self) -> float:
        return h.tree_cpu(self.jvm) if self.jvm else 0.0

    def _row(self, run: str, seconds: float, node: float, ship: float, moto: float) -> dict:
        total, cores = self.data.total, len(self.pinning.ship)
        return {
            "run": run,
            "seconds": seconds,
            "docs/s": total / seconds,
            f"{self.cluster} cpu s": node,
            "shipper cpu s": ship,
            "moto cpu s": moto,
            f"{self.cluster} busy %": 100 * node / seconds / len(self.pinning.node),
            "shipper+moto busy %": 100 * (ship + moto) / seconds / cores,
        }

    def baseline(self, _: int = 0) -> dict[str, Any]:
        cpu_node, cpu_self = self._cpu(), _self_cpu()
        seconds = load(self.es_url, self.data.base_bodies, self.loader_threads)
        row = self._row(
            f"loader ({self.loader_threads} threads)",
            seconds,
            self._cpu() - cpu_node,
            _self_cpu() - cpu_self,
            0.0,
        )
        self.drop(f"bench-base-{DAY}")
        return row

    def s3lb_round(self, n: int, profile: Path | None = None) -> dict[str, Any]:
        args, aws = self.args, self.aws
        queue_url = aws.queue(VisibilityTimeout=300)
        config = h.s3lb_config(
            queue_url,
            self.es_url,
            state_dir=self.tmp / f"state-{n}",
            metrics_port=h.free_port(),
            # Polling as users get it (wait_time 20 s, poll_frequency 1 s), not the tests'
            # 1 s long polls with a 100 ms pause after an empty one.
            settings={
                "object_workers": args.object_workers,
                "processes": args.processes,
                "wait_time": None,
            },
            input_options={"poll_frequency": None},
            output={
                "bulk_max_size": args.bulk,
                "worker": args.workers,
                "compression_level": args.compression,
            },
        )
        with h.Daemon(config, self.tmp / f"run-{n}", aws.env, profile=profile) as daemon:
            if self.processes > 1:
                daemon.wait_for("every worker process is running", 60)
            workers = len(h.tree(daemon.pid))
            self.seen_processes.add(workers - 1 if workers > 1 else 1)
            cpu_d, cpu_node, cpu_moto = h.tree_cpu(daemon.pid), self._cpu(), h.tree_cpu(aws.pid)
            t0 = time.perf_counter()
            aws.notify(queue_url, self.data.bucket, self.data.objects)
            first = daemon.wait_counter("events_indexed", 1, timeout=600, poll=0.05)
            t1 = daemon.wait_counter("events_indexed", self.data.total, timeout=1800, poll=0.1)
            row = self._row(
                f"s3lb run ({self.processes} proc)" + (" profiled" if profile else ""),
                t1 - t0,
                self._cpu() - cpu_node,
                h.tree_cpu(daemon.pid) - cpu_d,
                h.tree_cpu(aws.pid) - cpu_moto,
            )
            daemon.wait_counter("messages_deleted", len(self.data.objects), timeout=120)
            row["first docs s"] = first - t0
            row["bulks"] = int(daemon.metrics().get("s3lb_bulk_requests_total", 0))
            if daemon.stop() != 0:
                raise RuntimeError(daemon.log[-3000:])
        self.drop(f"bench-s3lb-{DAY}")
        return row

    def pairs(self) -> list[float]:
        """Loader seconds / s3lb seconds, per round."""
        return [b["seconds"] / s["seconds"] for b, s in zip(*[iter(self.rows)] * 2, strict=True)]

    def ratio(self) -> float:
        return statistics.median(self.pairs())

    def report(self) -> None:
        p, total = self.pinning, self.data.total
        print(
            f"pinning {p.name}: node on {_cores(p.node)}, shipper on {_cores(p.ship)}; "
            f"{total:,} documents; bulk {self.args.bulk}, {self.args.workers} bulk workers per "
            f"s3lb process; processes: {self.args.processes} → {self.processes} "
            f"(worker processes seen: {sorted(self.seen_processes)})"
        )
        h.table(self.rows, [*self.rows[0], "first docs s", "bulks"])
        s3lb_cpu = min(r["shipper cpu s"] for r in self.rows if r["run"].startswith("s3lb"))
        pairs = self.pairs()
        print(
            f"s3lb CPU per document: {s3lb_cpu / total * 1e6:.1f} us; per-round ratios "
            f"(loader seconds / s3lb seconds): {', '.join(f'{x:.2f}' for x in pairs)}\n"
        )


def verdict(args: argparse.Namespace, results: list[Rounds]) -> None:
    """The RATIO line: disjoint cores when they were run; shared cores as information."""
    by_name = {r.pinning.name: r.ratio() for r in results}
    if args.sink == "null":
        for name, value in by_name.items():
            print(
                f"RATIO e2e s3lb/loader to a null sink, {name} cores: {value:.2f} "
                "(s3lb's own ceiling; the target is against the node)"
            )
        return
    if "shared" in by_name:
        print(
            f"INFO e2e s3lb/loader throughput, node and shipper sharing every core "
            f"(median of rounds): {by_name['shared']:.2f}"
        )
    if "disjoint" in by_name:
        value = by_name["disjoint"]
        h.ratio(
            "e2e s3lb/loader throughput, node and shipper on disjoint cores (median of rounds)",
            value,
            ">= 0.95",
            value >= 0.95,
        )


if __name__ == "__main__":
    main()
