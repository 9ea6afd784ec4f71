"""Resume after SIGTERM: events re-sent when ``s3lb run`` is stopped half-way through a
1M-line object and started again. Target: at most one batch (``bulk_max_size``);
shippers without checkpoints re-send everything sent before the stop.

Run: ``.venv/bin/python bench/resume.py [--quick] [--plain]``

- moto (S3 + SQS) in a process of its own; the cluster is tests/fakes/null_sink.py with
  ``--track-ids``: it answers 409 to an ``_id`` it has already indexed and counts those
  re-sent items (the cluster is not what is measured).
- One gzip ALB object (``--plain``: uncompressed, resumed with a Range GET). The daemon
  gets SIGTERM once the sink holds half of the lines (``shutdown_timeout: 2s``, so the
  drain cannot finish the object), then a second daemon on the same state directory
  ships the rest. Re-sent = items answered 409.
- The baseline, in the same run: the same stop and restart with the checkpoint store
  wiped before the restart (what a shipper without checkpoints does).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="200,000 lines")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--plain", action="store_true", help="an uncompressed object")
    ap.add_argument("--bulk", type=int, default=1600, help="bulk_max_size")
    ap.add_argument("--workers", type=int, default=2, help="output worker")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.lines = 200_000
    h.header("resume: events re-sent after SIGTERM half-way through an object", args)

    with h.workdir("resume", args.keep) as tmp, h.Aws() as aws, h.NullSink(track_ids=True) as sink:
        bucket = aws.bucket()
        key = "AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/01/big.log"
        t = time.perf_counter()
        blocks, lines = [], 0
        for block in h.alb_stream(args.lines * 1000, block_lines=20_000):
            blocks.append(block)
            lines += block.count(b"\n")
            if lines >= args.lines:
                break
        text = b"".join(b"".join(blocks).splitlines(keepends=True)[: args.lines])
        del blocks
        body = text if args.plain else h.gz(text)
        if not args.plain:
            key += ".gz"
        etag = aws.put(bucket, key, body)
        del text
        print(
            f"object: {args.lines:,} lines, {len(body) / 1e6:.0f} MB "
            f"{'plain' if args.plain else 'gzip'} (made in {time.perf_counter() - t:.0f}s)"
        )
        rows = []
        for wipe in (False, True):
            label = "checkpoint store wiped (baseline)" if wipe else "s3lb (checkpoints)"
            sink.reset()
            queue_url = aws.queue(VisibilityTimeout=300)
            state = tmp / f"state-{wipe}"
            config = h.s3lb_config(
                queue_url,
                sink.url,
                state_dir=state,
                metrics_port=h.free_port(),
                settings={"shutdown_timeout": "2s"},
                output={"bulk_max_size": args.bulk, "worker": args.workers},
            )
            aws.notify(queue_url, bucket, [(key, etag, len(body))])
            first = h.Daemon(config, tmp / f"run-{wipe}", aws.env, name="first")
            with first:
                deadline = time.monotonic() + 1800
                while sink.stats()["unique"] < args.lines // 2:
                    if time.monotonic() > deadline or first.process.poll() is not None:
                        raise RuntimeError(first.log[-3000:])
                    time.sleep(0.05)
                at_stop = sink.stats()["unique"]
                if first.stop() != 0:
                    raise RuntimeError(first.log[-3000:])
            before = sink.stats()["unique"]
            if wipe:
                shutil.rmtree(state / "checkpoint", ignore_errors=True)
            t0 = time.perf_counter()
            second = h.Daemon(config, tmp / f"run-{wipe}", aws.env, name="second")
            with second:
                second.wait_counter("messages_deleted", 1, timeout=1800, poll=0.2)
                resumed = "resuming object from its checkpoint" in second.log
                if second.stop() != 0:
                    raise RuntimeError(second.log[-3000:])
            stats = sink.stats()
            if stats["unique"] != args.lines:
                raise RuntimeError(f"{stats['unique']} of {args.lines} lines indexed")
            rows.append(
                {
                    "run": label,
                    "indexed at SIGTERM": at_stop,
                    "indexed before restart": before,
                    "re-sent": stats["duplicates"],
                    "re-sent %": 100 * stats["duplicates"] / before,
                    "resumed": "yes" if resumed else "no",
                    "restart s": time.perf_counter() - t0,
                }
            )
            print(f"  {label}: re-sent {stats['duplicates']:,}", flush=True)

        print()
        print(
            f"{args.lines:,} lines; bulk_max_size {args.bulk}, {args.workers} workers, "
            f"shutdown_timeout 2s; re-sent % is of what was indexed before the restart; "
            f"{h.CORES} cores"
        )
        h.table(
            rows,
            [
                "run",
                "indexed at SIGTERM",
                "indexed before restart",
                "re-sent",
                "re-sent %",
                "resumed",
                "restart s",
            ],
        )
        ours, base = rows[0]["re-sent"], rows[1]["re-sent"]
        print(
            f"re-sent with checkpoints: {ours:,} events (target <= one batch = {args.bulk}: "
            f"{'met' if ours <= args.bulk else 'NOT met'})"
        )
        value = ours / base if base else 0.0
        h.ratio(
            "resume re-sent with/without checkpoints",
            value,
            f"<= {args.bulk}/{base:,} = {args.bulk / base if base else 0:.4f}",
            ours <= args.bulk,
        )


if __name__ == "__main__":
    main()
