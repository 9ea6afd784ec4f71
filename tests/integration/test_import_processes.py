"""``s3lb import`` with ``processes: 2`` on moto and the fake cluster: every object is
indexed exactly once and one summary sums both workers; ``s3lb state`` shows the job by
its shares; a SIGTERM drains and the rerun resumes each share; a rerun with another
number of processes finishes without doubles; a worker killed with SIGKILL is restarted
and the import completes, every document once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from s3lb.sources import Share
from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.integration.test_import import bulk_requests, import_config, s3lb
from tests.support.helpers import (
    ALB,
    ALB_LINES,
    big_alb,
    expected_ids,
    pid_alive,
    wait_until,
    worker_pids,
)

pytestmark = pytest.mark.slow


def put_objects(aws: Aws, bucket: str, count: int, lines: int = 0) -> set[str]:
    """``count`` ALB objects under ``prod-web/`` (the sample, or ``lines`` lines
    gzipped); the ``_id`` s they must give. Both shares of 2 get some."""
    expected: set[str] = set()
    keys = [f"prod-web/{i:03d}.log" + (".gz" if lines else "") for i in range(count)]
    assert all(any(Share(i, 2).holds(k) for k in keys) for i in (1, 2))
    for key in keys:
        if lines:
            etag = aws.put(bucket, key, big_alb(lines), True)
            expected |= expected_ids(bucket, key, etag, lines)
        else:
            expected |= expected_ids(bucket, key, aws.put(bucket, key, ALB), ALB_LINES)
    return expected


def state_table(tmp_path: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "s3lb", "state", "-c", str(tmp_path / "s3lb.yml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


def assert_exactly_once(es: FakeEs, expected: set[str]) -> None:
    assert {doc_id for _, doc_id in es.docs} == expected
    assert len(es.docs) == len(expected)


def test_two_processes_index_every_object_once_and_sum_their_counts(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    bucket = aws.bucket()
    expected = put_objects(aws, bucket, 12)
    config = import_config(fake_es.url, f"s3://{bucket}/prod-web/", processes=2)

    status, _, err = s3lb(tmp_path, config, "import").finish()
    assert status == 0, err
    assert_exactly_once(fake_es, expected)
    assert sorted(worker_pids(err)) == [1, 2]
    summary = "12 objects listed in the window: 12 read, 0 already done, 0 failed"
    assert summary in err and f"{len(expected):,} events indexed" in err
    assert err.count("s3lb import: ") == 1
    assert "share=1/2: complete" in err and "share=2/2: complete" in err

    table = state_table(tmp_path)
    row = r"imports: 1\n.*SHARES.*\n.*prod-web/ since=- to=-\s+complete\s+12\s+0\s+2/2\s"
    assert re.search(row, table), table

    requests = bulk_requests(fake_es)
    status, _, err = s3lb(tmp_path, config, "import").finish()
    assert status == 0, err
    assert err.count("import job already complete; nothing to do") == 2
    status, _, err = s3lb(tmp_path, config, "import", "--processes", "3").finish()
    assert status == 0, err
    assert "12 objects listed in the window: 0 read, 12 already done" in err
    assert bulk_requests(fake_es) == requests


def interrupted_import(
    aws: Aws, fake_es: FakeEs, tmp_path: Path, signum: signal.Signals
) -> tuple[set[str], str, int, str]:
    """An import of 12 objects with 2 processes, sent ``signum`` once the first objects
    are in: the expected ``_id`` s, the configuration, its exit status and stderr.
    Every listed object is handed to the delivery at once; at 1 s a bulk what is handed
    over takes longer than the 2 s drain, so the run is always cut short."""
    bucket = aws.bucket()
    lines = 2000
    expected = put_objects(aws, bucket, 12, lines)
    config = import_config(
        fake_es.url,
        f"s3://{bucket}/prod-web/",
        processes=2,
        object_workers=1,
        shutdown_timeout="2s",
    )
    fake_es.latency = 0.05
    first = s3lb(tmp_path, config, "import")
    wait_until(lambda: len(fake_es.docs) >= 2 * lines, 60, "the first objects under way")
    fake_es.latency = 1.0  # what is left now takes seconds: the signal comes first
    first.process.send_signal(signum)
    status, _, err = first.finish()
    fake_es.latency = 0
    return expected, config, status, err


def test_sigterm_drains_every_worker_and_the_rerun_resumes_each_share(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    expected, config, status, err = interrupted_import(aws, fake_es, tmp_path, signal.SIGTERM)
    assert status == 143, err
    assert err.count("stop requested by the supervisor; stopping") == 2
    assert "interrupted: run the same command again to continue" in err
    assert len(fake_es.docs) < len(expected)

    status, _, err = s3lb(tmp_path, config, "import").finish()
    assert status == 0, err
    assert "import job resumes after its cursor" in err
    assert_exactly_once(fake_es, expected)
    # Re-sent at most what was in flight at the cut: a batch per bulk worker.
    assert fake_es.item_statuses[409] <= 2 * 2 * 1000


def test_a_rerun_with_another_number_of_processes_finishes_without_doubles(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    expected, config, status, err = interrupted_import(aws, fake_es, tmp_path, signal.SIGINT)
    assert status == 130, err

    status, _, err = s3lb(tmp_path, config, "import", "--processes", "3").finish()
    assert status == 0, err
    assert sorted(worker_pids(err)) == [1, 2, 3]
    assert_exactly_once(fake_es, expected)
    assert "share=3/3: complete" in err


def test_a_worker_killed_mid_object_is_restarted_and_the_import_completes_once(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    bucket = aws.bucket()
    lines = 3000
    expected = put_objects(aws, bucket, 8, lines)
    config = import_config(fake_es.url, f"s3://{bucket}/prod-web/", processes=2, object_workers=1)
    fake_es.latency = 0.05  # keeps objects half done long enough to kill a worker there
    runner = s3lb(tmp_path, config, "import")
    wait_until(lambda: len(worker_pids(runner.stderr)) == 2, 30, "two workers")
    wait_until(lambda: len(fake_es.docs) >= lines, 60, "objects under way")
    fake_es.latency = 1.0  # what is left now takes seconds: the kill comes first
    victim = worker_pids(runner.stderr)[1]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: worker_pids(runner.stderr)[1] != victim, 30, "a new worker 1")
    fake_es.latency = 0
    status, _, err = runner.finish(120)
    assert status == 0, err
    assert "import worker process died; restarting worker=1 status=-9" in err
    assert "worker processes restarted: 1" in err
    assert_exactly_once(fake_es, expected)


def test_a_failed_object_is_named_once_and_its_worker_is_not_restarted(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    bucket = aws.bucket()
    expected = put_objects(aws, bucket, 6)
    aws.put(bucket, "prod-web/bad.log.gz", b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    config = import_config(fake_es.url, f"s3://{bucket}/prod-web/", processes=2)

    status, _, err = s3lb(tmp_path, config, "import").finish()
    assert status == 1, err
    assert "7 objects listed in the window: 6 read, 0 already done, 1 failed" in err
    assert err.count(f"  s3://{bucket}/prod-web/bad.log.gz: corrupt gzip") == 1
    assert "restarting" not in err and len(worker_pids(err)) == 2
    assert_exactly_once(fake_es, expected)


def test_a_killed_supervisor_takes_its_workers_along_and_the_rerun_finishes_once(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    bucket = aws.bucket()
    lines = 2000
    expected = put_objects(aws, bucket, 8, lines)
    config = import_config(fake_es.url, f"s3://{bucket}/prod-web/", processes=2, object_workers=1)
    fake_es.latency = 0.05
    runner = s3lb(tmp_path, config, "import")
    wait_until(lambda: len(worker_pids(runner.stderr)) == 2, 30, "two workers")
    pids = list(worker_pids(runner.stderr).values())
    wait_until(lambda: len(fake_es.docs) >= lines, 60, "objects under way")
    fake_es.latency = 1.0  # what is left now takes seconds: the kill comes first
    runner.kill()  # SIGKILL the supervisor only: its workers drain and exit
    wait_until(lambda: not any(pid_alive(p) for p in pids), 5 + 30, "the workers to exit")
    assert runner.stderr.count("supervisor gone; stopping") == 2

    fake_es.latency = 0
    status, _, err = s3lb(tmp_path, config, "import").finish()
    assert status == 0, err
    assert_exactly_once(fake_es, expected)


def test_share_is_not_for_users_and_processes_must_be_a_count(tmp_path: Path) -> None:
    config = tmp_path / "s3lb.yml"
    config.write_text(import_config("http://127.0.0.1:9", "s3://b/p/"))
    run = [sys.executable, "-m", "s3lb", "-c", str(config), "import"]
    refused = subprocess.run([*run, "--share", "1/2"], capture_output=True, text=True)
    assert refused.returncode == 2
    assert "--share is for s3lb's own import worker processes" in refused.stderr
    refused = subprocess.run([*run, "--processes", "0"], capture_output=True, text=True)
    assert refused.returncode == 2 and "expected auto or 1 to" in refused.stderr
