"""Every core for ``s3lb import``: ALB lines in 20 gzip objects imported with
``processes: N`` (N = the cores this process may use) against ``processes: 1``.
Target: ≥ 1.5× on 2 cores.

Run: ``.venv/bin/python bench/import_cores.py [--quick] [--lines N] [--processes N]``

- S3: moto in a process of its own (bench/_harness.py ``Aws``: the fast stand-in does not
  list); the cluster: bench/_sink.py's null bulk endpoint, acknowledging every item.
- One gzip body (tests/data/formats/alb.log's lines, repeated) under 20 keys.
- Each run is ``s3lb import`` from start to exit, process start-up and listing included,
  each on a fresh state_dir; the ratio is events/s with N processes over events/s with
  one, in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

from tests.support import configs
from tests.support.daemon import S3lbProcess

OBJECTS = 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines in all (1M)")
    ap.add_argument("--quick", action="store_true", help="200k lines")
    ap.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.lines = 200_000
    h.header("every core: s3lb import with processes N vs 1", args)
    per_object = args.lines // OBJECTS
    total = per_object * OBJECTS
    with h.workdir("import-cores", args.keep) as tmp, h.Aws() as aws, h.NullSink() as sink:
        bucket = aws.bucket()
        data = h.sample_alb_gzip(per_object)
        for i in range(OBJECTS):
            aws.put(bucket, f"AWSLogs/123456789012/elasticloadbalancing/c-{i:02d}.log.gz", data)
        print(
            f"data: {OBJECTS} objects of {per_object:,} lines, {len(data) / 1e6:.1f} MB gzip each"
        )
        rows = []
        for processes in (1, args.processes):
            sink.reset()
            config = configs.s3lb_config(
                state_dir=tmp / f"state-{processes}",
                buckets=[f"s3://{bucket}"],
                log_format="alb",
                es_url=sink.url,
                es={"index": "bench-s3lb-%{+yyyy.MM.dd}", "flush_interval": None},
                processes=processes,
                stats_interval="5s",
            )
            run = S3lbProcess(
                tmp / f"import-{processes}",
                config,
                aws.env,
                command=["import"],
                name=f"p{processes}",
                inherit_env=False,
                split_output=True,
            )
            t0 = time.perf_counter()
            run.start()
            cpu = 0.0
            while run.alive():  # the tree's CPU, sampled until the exit
                cpu = max(cpu, h.tree_cpu(run.pid))
                time.sleep(0.05)
            seconds = time.perf_counter() - t0
            status, _, err = run.finish()
            if status != 0 or sink.stats()["items"] < total:
                raise RuntimeError(f"import failed ({status}):\n{err[-3000:]}")
            rows.append(h.process_run(processes, seconds, total, cpu, sink.stats()))
        print()
        print(
            f"{total:,} ALB lines in {OBJECTS} gzip objects; S3: moto, cluster: null sink; "
            f"{len(os.sched_getaffinity(0))} cores available (shared by s3lb, moto and the sink)"
        )
        h.processes_verdict(rows, f"import cores processes {args.processes}/1", 1.5)


if __name__ == "__main__":
    main()
