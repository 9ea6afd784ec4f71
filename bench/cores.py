"""Every core: 1M ALB lines in 20 gzip objects drained by ``s3lb run`` with
``processes: N`` (N = the cores this process may use, as ``processes: auto`` counts
them) against ``processes: 1``.
Target: ≥ 1.7× on 2 cores.

Run: ``.venv/bin/python bench/cores.py [--quick] [--lines N] [--processes N]``

- S3 and SQS: tests/fakes/fast_aws.py (a process of its own, no added latency); the
  cluster: tests/fakes/null_sink.py, a null bulk endpoint acknowledging every item (its
  own process).
- The lines are those of tests/data/formats/alb.log, repeated (``_id`` s come from the
  key and the line's position, so every event is distinct); one gzip body is uploaded
  under 20 keys.
- Each run starts with its daemon polling an empty queue (every worker, for N > 1);
  the clock starts when the 20 notifications are sent and stops when the null sink has
  acknowledged every line (then the run waits for the 20 deletes, and stops).
- The ratio is events/s with N processes over events/s with one, in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

from s3lb.config.cores import usable_cores

OBJECTS = 20


def wait_items(sink: h.NullSink, target: int, daemon: h.Daemon, timeout: float) -> float:
    """Wait until the sink acknowledged ``target`` items; the wall time it did."""
    deadline = time.monotonic() + timeout
    while sink.stats()["items"] < target:
        if not daemon.alive():
            raise RuntimeError(f"s3lb exited:\n{daemon.log[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out at {sink.stats()['items']} of {target} items")
        time.sleep(0.02)
    return time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines in all (1M)")
    ap.add_argument("--quick", action="store_true", help="200k lines")
    ap.add_argument("--processes", type=int, default=usable_cores()[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.lines = 200_000
    h.header("every core: s3lb run with processes N vs 1", args)
    per_object = args.lines // OBJECTS
    total = per_object * OBJECTS
    with h.workdir("cores", args.keep) as tmp, h.FastAws(0.0) as aws, h.NullSink() as sink:
        bucket = aws.bucket()
        data = h.sample_alb_gzip(per_object)
        objects = []
        for i in range(OBJECTS):
            key = f"AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/01/c-{i:02d}.log.gz"
            objects.append((key, aws.put(bucket, key, data), len(data)))
        print(
            f"data: {OBJECTS} objects of {per_object:,} lines, {len(data) / 1e6:.1f} MB gzip each"
        )

        rows = []
        for processes in (1, args.processes):
            queue_url = aws.queue(VisibilityTimeout=300)
            sink.reset()
            config = h.s3lb_config(
                queue_url,
                sink.url,
                state_dir=tmp / f"state-{processes}",
                metrics_port=h.free_port(),
                settings={"processes": processes},
            )
            daemon = h.Daemon(config, tmp / f"run-{processes}", aws.env, name=f"p{processes}")
            with daemon:
                while processes > 1 and "every worker process is running" not in daemon.log:
                    time.sleep(0.02)
                cpu = h.tree_cpu(daemon.pid)
                t0 = time.perf_counter()
                aws.notify(queue_url, bucket, objects)
                t1 = wait_items(sink, total, daemon, 900)
                cpu = h.tree_cpu(daemon.pid) - cpu
                daemon.wait_counter("messages_deleted", OBJECTS, timeout=60)
                if daemon.stop() != 0:
                    raise RuntimeError(daemon.log[-3000:])
            rows.append(h.process_run(processes, t1 - t0, total, cpu, sink.stats()))
        print()
        print(
            f"{total:,} ALB lines in {OBJECTS} gzip objects; S3/SQS: tests/fakes/fast_aws.py, "
            f"cluster: tests/fakes/null_sink.py; {usable_cores()[1]} available "
            f"(shared by s3lb, the fake AWS and the sink)"
        )
        h.processes_verdict(rows, f"cores processes {args.processes}/1", 1.7)


if __name__ == "__main__":
    main()
