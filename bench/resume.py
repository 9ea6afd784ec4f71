"""Resume after SIGTERM: events re-sent when ``s3lb run`` is stopped half-way through
its objects and started again, with one worker process and with two. Target: at most
one batch (``bulk_max_size``) per worker process; shippers without checkpoints re-send
everything sent before the stop.

Run: ``.venv/bin/python bench/resume.py [--quick] [--plain] [--processes 1,2]``

- moto (S3 + SQS) in a process of its own; the cluster is tests/fakes/null_sink.py with
  ``--track-ids``: it answers 409 to an ``_id`` it has already indexed and counts those
  re-sent items (the cluster is not what is measured).
- ``--objects`` gzip ALB objects (``--plain``: uncompressed, resumed with a Range GET)
  sharing ``--lines``, one notification each, sent one at a time a moment apart so that
  every worker process receives some (one receive would otherwise take them all). The
  daemon gets SIGTERM once the sink holds half of the lines (``shutdown_timeout: 2s``,
  so the drain cannot finish them); ``s3lb state`` then tells how many objects were
  left in flight (in progress in the store), and the daemon's log how many messages
  each worker process held when it stopped receiving. A second daemon on the same state
  directory ships the rest. Re-sent = items answered 409.
- The baseline, in the same run: the same stop and restart with the checkpoint store
  wiped before the restart (what a shipper without checkpoints does).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

KEYS = "AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/01/big-{n}.log"


def upload(args: argparse.Namespace, aws: h.Aws, bucket: str) -> list[tuple[str, str, int]]:
    """``--objects`` objects sharing ``--lines`` distinct lines: (key, etag, size)."""
    t = time.perf_counter()
    per = args.lines // args.objects
    lines: list[bytes] = []
    for block in h.alb_stream(args.lines * 1000, block_lines=20_000):
        lines += block.splitlines(keepends=True)
        if len(lines) >= per * args.objects:
            break
    objects = []
    for n in range(args.objects):
        text = b"".join(lines[n * per : (n + 1) * per])
        body = text if args.plain else h.gz(text)
        key = KEYS.format(n=n) + ("" if args.plain else ".gz")
        objects.append((key, aws.put(bucket, key, body), len(body)))
    print(
        f"objects: {args.objects} of {per:,} lines, {sum(o[2] for o in objects) / 1e6:.0f} MB "
        f"{'plain' if args.plain else 'gzip'} (made in {time.perf_counter() - t:.0f}s)"
    )
    return objects


def in_flight(daemon: h.Daemon) -> tuple[int, int]:
    """Objects (in progress, done) in the daemon's checkpoint store (``s3lb state``)."""
    out = subprocess.run(
        [h.PYTHON, "-m", "s3lb", "state", "--json", "-c", str(daemon.config_path)],
        env=daemon.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    states = [o["status"] for o in json.loads(out)["objects"]]
    return states.count("in_progress"), states.count("done")


def stop_and_restart(
    args: argparse.Namespace,
    tmp: Path,
    aws: h.Aws,
    sink: h.NullSink,
    bucket: str,
    objects: list[tuple[str, str, int]],
    processes: int,
    wipe: bool,
) -> dict[str, Any]:
    total = args.lines // args.objects * args.objects
    name = f"p{processes}-{'wiped' if wipe else 'kept'}"
    sink.reset()
    queue_url = aws.queue(VisibilityTimeout=300)
    state = tmp / f"state-{name}"
    config = h.s3lb_config(
        queue_url,
        sink.url,
        state_dir=state,
        metrics_port=h.free_port(),
        settings={"shutdown_timeout": "2s", "processes": processes},
        output={"bulk_max_size": args.bulk, "worker": args.workers},
    )
    first = h.Daemon(config, tmp / f"run-{name}", aws.env, name="first")
    with first:
        if processes > 1:
            first.wait_for("every worker process is running", 60)
        for obj in objects:
            aws.notify(queue_url, bucket, [obj])
            time.sleep(args.spacing)
        deadline = time.monotonic() + 1800
        while sink.stats()["unique"] < total // 2:
            if time.monotonic() > deadline or not first.alive():
                raise RuntimeError(first.log[-3000:])
            time.sleep(0.05)
        at_stop = sink.stats()["unique"]
        if first.stop() != 0:
            raise RuntimeError(first.log[-3000:])
    before = sink.stats()["unique"]
    flying, done = in_flight(first)
    # What each worker process held when told to stop (messages, one object each).
    held = re.findall(r"stopped receiving; draining (?:worker=(\d+) )?in_flight=(\d+)", first.log)
    if wipe:
        shutil.rmtree(state / "checkpoint", ignore_errors=True)
    t0 = time.perf_counter()
    second = h.Daemon(config, tmp / f"run-{name}", aws.env, name="second")
    with second:
        deadline = time.monotonic() + 1800
        while sink.stats()["unique"] < total or aws.counts(queue_url) != (0, 0):
            if time.monotonic() > deadline or not second.alive():
                raise RuntimeError(second.log[-3000:])
            time.sleep(0.2)
        resumed = second.log.count("resuming object from its checkpoint")
        if second.stop() != 0:
            raise RuntimeError(second.log[-3000:])
    stats = sink.stats()
    if stats["unique"] != total:
        raise RuntimeError(f"{stats['unique']} of {total} lines indexed")
    row = {
        "processes": processes,
        "run": "store wiped (baseline)" if wipe else "s3lb (checkpoints)",
        "in flight at stop": flying,
        "done at stop": done,
        "held per worker": "+".join(n for _, n in sorted(held)) or "?",
        "indexed at SIGTERM": at_stop,
        "indexed before restart": before,
        "re-sent": stats["duplicates"],
        "re-sent %": 100 * stats["duplicates"] / before,
        "resumed": resumed,
        "restart s": time.perf_counter() - t0,
    }
    print(
        f"  processes {processes}, {row['run']}: {flying} objects in flight at the stop, "
        f"re-sent {stats['duplicates']:,}",
        flush=True,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="200,000 lines")
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines in all")
    ap.add_argument("--objects", type=int, default=8)
    ap.add_argument("--processes", default="1,2", help="process counts, comma-separated")
    ap.add_argument("--spacing", type=float, default=0.3, help="seconds between notifications")
    ap.add_argument("--plain", action="store_true", help="uncompressed objects")
    ap.add_argument("--bulk", type=int, default=1600, help="bulk_max_size")
    ap.add_argument("--workers", type=int, default=2, help="output worker")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.lines = 200_000
    h.header("resume: events re-sent after SIGTERM half-way through the objects", args)

    with h.workdir("resume", args.keep) as tmp, h.Aws() as aws, h.NullSink(track_ids=True) as sink:
        bucket = aws.bucket()
        objects = upload(args, aws, bucket)
        counts = [int(p) for p in args.processes.split(",")]
        rows = [
            stop_and_restart(args, tmp, aws, sink, bucket, objects, p, wipe)
            for p in counts
            for wipe in (False, True)
        ]

    print()
    print(
        f"{args.lines // args.objects * args.objects:,} lines in {args.objects} objects; "
        f"bulk_max_size {args.bulk}, {args.workers} bulk workers per process, "
        f"shutdown_timeout 2s; re-sent % is of what was indexed before the restart; "
        f"'resumed' counts objects resumed from a checkpoint; {h.CORES} cores"
    )
    h.table(rows, list(rows[0]))
    for p, ours, base in zip(counts, rows[0::2], rows[1::2], strict=True):
        bound = p * args.bulk
        if not ours["in flight at stop"] or not base["re-sent"]:
            # The drain finished every object (a fast machine, a short run): no resume
            # was measured, so there is no figure to claim.
            print(
                f"NO RATIO resume, processes {p}: nothing was left in flight at the stop "
                "(the drain finished every object); run without --quick or with more --lines"
            )
            continue
        value = ours["re-sent"] / base["re-sent"] if base["re-sent"] else 0.0
        h.ratio(
            f"resume re-sent with/without checkpoints, processes {p} "
            f"({ours['re-sent']:,} vs {base['re-sent']:,}; "
            f"{ours['in flight at stop']} objects in flight)",
            value,
            f"<= {p} x {args.bulk}/{base['re-sent']:,} = "
            f"{bound / base['re-sent'] if base['re-sent'] else 0:.4f}",
            ours["re-sent"] <= bound,
        )


if __name__ == "__main__":
    main()
