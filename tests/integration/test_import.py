"""``s3lb import`` end to end on moto: only the window is indexed, a kill -9 resumes
without indexing anything twice, a finished import sends nothing, ``--dry-run`` only
lists, ``--enqueue`` hands the same objects to ``s3lb run`` daemons, and the listing of
a dated layout skips the days away from the window (counted List calls)."""

from __future__ import annotations

import io
import math
import signal
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from s3lb.aws.s3 import ListPage, S3Client
from s3lb.aws.session import AwsSession
from s3lb.checkpoint import open_store_readonly
from s3lb.cli.import_ import run_command as run_import
from s3lb.config import loads
from s3lb.pipeline import ImportOptions
from s3lb.sources import Lister, Window
from s3lb.telemetry import Telemetry
from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.support.configs import s3lb_config
from tests.support.daemon import S3lbProcess
from tests.support.helpers import (
    ALB,
    ALB_LINES,
    KEY_FIELDS,
    big_alb,
    expected_ids,
    state_json,
    wait_until,
)

PREFIX = "prod-web/AWSLogs/123456789012/elasticloadbalancing/us-east-1/"


def import_config(
    es_url: str,
    bucket_url: str,
    *,
    state_dir: str = "./state-import",
    queue: str = "",
    **extra: Any,
) -> str:
    """One ``s3`` input over ``bucket_url`` (and an ``sqs`` input over ``queue``)."""
    return s3lb_config(
        state_dir=state_dir,
        buckets=[bucket_url],
        queues=[queue] if queue else [],
        log_format="alb",
        input_options={"key_regex_fields": KEY_FIELDS},
        es_url=es_url,
        es={"bulk_max_size": 1000, "worker": 2},
        **{"stats_interval": "1s", **extra},
    )


def s3lb(tmp_path: Path, config: str, *args: str, name: str = "s3lb") -> S3lbProcess:
    """``s3lb ARGS -c NAME.yml`` started in ``tmp_path``; stdout and stderr kept apart."""
    command = S3lbProcess(tmp_path, config, command=args, name=name, split_output=True)
    command.start()
    return command


def wait_for_second() -> datetime:
    """Sleep into the next whole second and return it: S3's LastModified has second
    precision, so what was uploaded before is before it, and what is uploaded now is not."""
    second = math.floor(time.time()) + 1
    time.sleep(second - time.time() + 0.05)
    return datetime.fromtimestamp(second, UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def day_prefix(moment: datetime) -> str:
    return f"{PREFIX}{moment:%Y/%m/%d}/"


def bulk_requests(es: FakeEs) -> int:
    return sum(1 for r in es.requests if r.path.endswith("_bulk"))


@pytest.mark.slow
def test_only_the_window_is_indexed_once_across_a_kill_and_a_third_run_sends_nothing(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess], tmp_path: Path
) -> None:
    bucket = aws.bucket()
    day = day_prefix(datetime.now(UTC))
    for i in range(2):  # before the window
        aws.put(bucket, f"{day}before-{i}.log.gz", ALB, compress=True)
    since = wait_for_second()
    expected: set[str] = set()
    inside = []
    lines = 8000
    for i in range(6):
        key = f"{day}inside-{i}.log.gz"
        expected |= expected_ids(bucket, key, aws.put(bucket, key, big_alb(lines), True), lines)
        inside.append(key)
    small = "prod-web/other/small.log"  # outside the dated folders, inside the window
    expected |= expected_ids(bucket, small, aws.put(bucket, small, ALB), ALB_LINES)
    inside.append(small)
    to = wait_for_second()
    for i in range(2):  # after the window
        aws.put(bucket, f"{day}after-{i}.log.gz", ALB, compress=True)
    config = import_config(fake_es.url, f"s3://{bucket}", object_workers=2)
    window = ("--since", iso(since), "--to", iso(to))

    dry = s3lb(tmp_path, config, "import", *window, "--dry-run")
    status, out, err = dry.finish()
    assert status == 0, err
    assert sorted(line.split("\t")[2] for line in out.splitlines()) == sorted(
        f"s3://{bucket}/{key}" for key in inside
    )
    assert bulk_requests(fake_es) == 0 and not (tmp_path / "state-import").exists()

    fake_es.latency = 0.05
    first = s3lb(tmp_path, config, "import", *window)
    wait_until(lambda: len(fake_es.docs) >= len(expected) // 3, 60, "a third of the window")
    fake_es.latency = 1.0  # what is left now takes seconds: the kill comes first
    # The job's cursor is committed with the first object done (or after 5 s): killed
    # before that, there would be no cursor to resume from, only checkpoints.
    wait_until(
        lambda: state_json(tmp_path / "s3lb.yml")["imports"], 60, "the job's cursor committed"
    )
    first.kill()
    indexed_before = len(fake_es.docs)
    assert indexed_before < len(expected)
    (cursor,) = state_json(tmp_path / "s3lb.yml")["imports"]  # type: ignore[misc]
    assert not cursor["complete"]

    fake_es.latency = 0
    status, _, err = s3lb(tmp_path, config, "import", *window).finish()
    assert status == 0, err
    assert {doc_id for _, doc_id in fake_es.docs} == expected  # nothing outside the window
    assert len(fake_es.docs) == len(expected)  # nothing indexed twice
    assert "resum" in err  # the cursor, and the half-read objects
    assert "import progress" in err or "s3lb import:" in err
    resent = fake_es.item_statuses[409]
    print(f"re-sent after kill -9: {resent} of {len(expected)}")
    assert resent < len(expected) - indexed_before + 3 * 1000
    (cursor,) = state_json(tmp_path / "s3lb.yml")["imports"]  # type: ignore[misc]
    assert cursor["complete"] and cursor["failed"] == 0
    assert cursor["last_key"] == max(inside) or cursor["last_key"] > max(inside)

    requests = bulk_requests(fake_es)
    status, _, err = s3lb(tmp_path, config, "import", *window).finish()
    assert status == 0, err
    assert "already complete" in err
    assert bulk_requests(fake_es) == requests

    # run on the same state dir: a notification of an imported object sends nothing.
    queue = aws.queue()
    (tmp_path / "s3lb.yml").write_text(import_config(fake_es.url, f"s3://{bucket}", queue=queue))
    key = inside[0]
    head = aws.s3.head_object(Bucket=bucket, Key=key)
    record = {
        "eventSource": "aws:s3",
        "eventVersion": "2.1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "eTag": head["ETag"]}},
    }
    aws.send(queue, {"Records": [record]})
    run = daemon(import_config(fake_es.url, f"s3://{bucket}", queue=queue))
    wait_until(lambda: "object already done; nothing re-sent" in run.log, 30, "the skip")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the message deleted")
    assert run.stop() == 0
    assert bulk_requests(fake_es) == requests


@pytest.mark.slow
def test_enqueued_objects_are_indexed_by_run_with_the_ids_of_a_local_import(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess], tmp_path: Path
) -> None:
    bucket = aws.bucket()
    day = day_prefix(datetime.now(UTC))
    keys = [f"{day}{i}.log.gz" for i in range(23)] + ["prod-web/x y+z%.log"]
    for key in keys:
        aws.put(bucket, key, ALB, compress=key.endswith(".gz"))
    url = f"s3://{bucket}/prod-web/"

    with FakeEs() as local_es:
        config = import_config(local_es.url, url, state_dir="./state-local")
        status, _, err = s3lb(tmp_path, config, "import", name="local").finish()
        assert status == 0, err
        local = local_es.docs
    assert len(local) == len(keys) * ALB_LINES

    queue = aws.queue()
    config = import_config(fake_es.url, url, state_dir="./state-enqueue")
    status, _, err = s3lb(tmp_path, config, "import", "--enqueue", queue, name="enq").finish()
    assert status == 0, err
    assert aws.counts(queue) == (len(keys), 0)  # one message per object, 10 per call
    assert bulk_requests(fake_es) == 0
    status, _, err = s3lb(tmp_path, config, "import", "--enqueue", queue, name="enq").finish()
    assert status == 0 and "already complete" in err
    assert aws.counts(queue) == (len(keys), 0)  # the rerun sent nothing

    fleet = import_config(fake_es.url, url, state_dir="./state-fleet", queue=queue)
    run = daemon(fleet)
    wait_until(lambda: len(fake_es.docs) == len(local), 30, "the queue's objects indexed")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the queue to empty")
    assert run.stop() == 0
    assert fake_es.docs == local  # same indexes, ids and documents

    # import on run's state dir: every object is known as done, nothing is sent.
    requests = bulk_requests(fake_es)
    status, _, err = s3lb(tmp_path, fleet, "import", name="fleet").finish()
    assert status == 0, err
    assert f"{len(keys)} already done" in err
    assert bulk_requests(fake_es) == requests


async def test_a_dated_layout_is_listed_by_the_days_near_the_window(aws: Aws) -> None:
    """Ten years of ELB folders and a window of a second today: one List call per level
    down to the years, one per year (its months), then today's month and day; no
    month or day folder of an old year is ever listed."""
    bucket = aws.bucket()
    old_days = [date(year, month, 1 + year % 20) for year in range(2015, 2025) for month in (1, 7)]
    for day in old_days:
        aws.put(bucket, f"{PREFIX}{day:%Y/%m/%d}/old.log", b"x")
    since = wait_for_second()
    new = f"{day_prefix(since)}new.log"
    aws.put(bucket, new, b"x")
    to = wait_for_second()

    calls: list[str] = []

    async def count(request: httpx.Request) -> None:
        if request.url.params.get("list-type") == "2":
            calls.append(request.url.params.get("prefix", ""))

    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
        s3 = S3Client(AwsSession(), http)

        async def list_page(prefix: str, **kwargs: Any) -> ListPage:
            return await s3.list_page(bucket, prefix, region="us-east-1", **kwargs)

        lister = Lister(list_page, "prod-web/", Window(since, to))
        listed = [obj async for obj in lister.objects()]

    assert [obj.key for obj in listed if since <= obj.last_modified < to] == [new]
    expected = [
        "prod-web/",
        "prod-web/AWSLogs/",
        "prod-web/AWSLogs/123456789012/",
        "prod-web/AWSLogs/123456789012/elasticloadbalancing/",
        PREFIX,
    ]
    for year in sorted({d.year for d in old_days} | {since.year}):
        expected.append(f"{PREFIX}{year}/")  # its month folders: one call
        if year == since.year:
            expected += [f"{PREFIX}{since:%Y/%m}/", day_prefix(since)]
    assert calls == expected
    print(f"{len(calls)} List calls; the old years' {len(old_days)} day folders: none listed")


async def test_failed_objects_are_named_exit_1_and_are_retried_by_the_next_run(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    """A corrupt object fails without stopping the others; the job is complete with one
    failure; the next run lists the window again, skips what is done (no GET, nothing
    sent) and retries the failed object, here fixed in the meantime."""
    bucket = aws.bucket()
    good = [f"prod-web/{i}.log" for i in range(3)]
    expected: set[str] = set()
    for key in good:
        expected |= expected_ids(bucket, key, aws.put(bucket, key, ALB), ALB_LINES)
    aws.put(bucket, "prod-web/bad.log.gz", b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    text = import_config(fake_es.url, f"s3://{bucket}", state_dir=str(tmp_path / "state"))
    config, _ = loads(text)

    async def run() -> tuple[int, str, Telemetry]:
        err, telemetry = io.StringIO(), Telemetry()
        status = await run_import(config, telemetry, ImportOptions(), err=err, tty=False)
        return status, err.getvalue(), telemetry

    status, err, _ = await run()
    assert status == 1
    assert "failed objects (retried by the next run): 1" in err
    assert f"s3://{bucket}/prod-web/bad.log.gz: corrupt gzip" in err
    assert {doc_id for _, doc_id in fake_es.docs} == expected
    requests = bulk_requests(fake_es)

    status, err, telemetry = await run()
    assert status == 1 and "bad.log.gz" in err and "3 already done" in err
    assert bulk_requests(fake_es) == requests
    assert telemetry.counters["objects_started"] == 1  # only the failed one was read again

    etag = aws.put(bucket, "prod-web/bad.log.gz", ALB, compress=True)
    expected |= expected_ids(bucket, "prod-web/bad.log.gz", etag, ALB_LINES)
    status, err, _ = await run()
    assert status == 0, err
    assert {doc_id for _, doc_id in fake_es.docs} == expected
    store = open_store_readonly(tmp_path / "state")
    assert store is not None
    try:
        (cursor,) = store.cursors()
    finally:
        store.close()
    assert (cursor.complete, cursor.done, cursor.failed) == (True, 4, 0)


@pytest.mark.slow
def test_ctrl_c_lets_objects_in_flight_finish_and_the_rerun_continues(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    """SIGINT stops listing, drains what is in flight, exits 130; the rerun continues
    from the cursor and sends nothing twice."""
    bucket = aws.bucket()
    expected: set[str] = set()
    lines = 3000
    for i in range(12):
        key = f"prod-web/{i}.log.gz"
        expected |= expected_ids(bucket, key, aws.put(bucket, key, big_alb(lines), True), lines)
    config = import_config(fake_es.url, f"s3://{bucket}/prod-web/", object_workers=2)
    fake_es.latency = 0.05
    first = s3lb(tmp_path, config, "import")
    wait_until(lambda: len(fake_es.docs) >= lines, 60, "the first objects under way")
    first.process.send_signal(signal.SIGINT)
    status, _, err = first.finish()
    assert status == 130, err
    assert "stopped listing; draining" in err
    assert "interrupted: run the same command again to continue" in err
    assert len(fake_es.docs) < len(expected)
    (cursor,) = state_json(tmp_path / "s3lb.yml")["imports"]  # type: ignore[misc]
    assert not cursor["complete"] and cursor["done"] >= 1

    fake_es.latency = 0
    status, _, err = s3lb(tmp_path, config, "import").finish()
    assert status == 0, err
    assert {doc_id for _, doc_id in fake_es.docs} == expected
    assert fake_es.item_statuses[409] == 0  # the drain finished what was in flight
