"""Operating ``s3lb run`` end to end: systemd's notify protocol on a real socket, the
Prometheus endpoint scraped during a run, ``s3lb check`` against moto and a dead
cluster, and the unit file as ``systemd-analyze verify`` sees it."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.paths import REPO
from tests.paths import SEED as SEED_DIR
from tests.support import helpers
from tests.support.configs import s3_input, s3lb_config
from tests.support.daemon import S3lbProcess
from tests.support.helpers import ALB, ALB_LINES, free_port, s3lb_cli, scrape, wait_until

pytestmark = pytest.mark.slow

UNIT = REPO / "contrib" / "systemd" / "s3lb.service"

#: This module's daemons: ``config(queues=[…], es_url=…, **settings)``.
config = functools.partial(s3lb_config, state_dir="./state-test", log_format="alb")


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A unix datagram socket for NOTIFY_SOCKET."""
    with helpers.notify_socket(30) as bound:
        yield bound


def next_state(sock: socket.socket, skip: str = "WATCHDOG=1") -> str:
    """The next notification that is not a watchdog ping or a bare status."""
    while True:
        message = sock.recv(4096).decode()
        if message != skip and not message.startswith("STATUS="):
            return message


def test_run_notifies_systemd_ready_then_stopping_after_sigterm_then_exits_cleanly(
    aws: Aws,
    fake_es: FakeEs,
    daemon: Callable[..., S3lbProcess],
    notify_socket: tuple[str, socket.socket],
) -> None:
    path, sock = notify_socket
    queue, _ = aws.quiet_queue()
    run = daemon(
        config(queues=[queue], es_url=fake_es.url),
        env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"},  # pings every 0.2 s
    )
    ready = next_state(sock)
    assert ready.startswith("READY=1\nSTATUS=polling: "), ready
    assert sock.recv(4096) == b"WATCHDOG=1"  # the loop keeps pinging while it polls
    assert run.alive()
    run.process.send_signal(__import__("signal").SIGTERM)
    stopping = next_state(sock)
    assert stopping.startswith("STOPPING=1\nSTATUS=draining: "), stopping
    assert run.stop() == 0, run.log
    assert "s3lb stopped" in run.log


def test_metrics_scraped_during_a_run_count_what_was_indexed_and_deleted(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess]
) -> None:
    queue, bucket = aws.quiet_queue()
    objects = 3
    for i in range(objects):
        aws.put(bucket, f"prod-web/{i}.log.gz", ALB, compress=True)
    run = daemon(config(queues=[queue], es_url=fake_es.url, metrics="127.0.0.1:0"))
    match = re.search(r"metrics endpoint listening url=(\S+)", run.log)
    assert match, run.log
    url = match.group(1)

    wait_until(lambda: len(fake_es.docs) == objects * ALB_LINES, 30, "every document")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the queue to empty")
    wait_until(
        lambda: scrape(url)["s3lb_messages_deleted_total"] == objects, 10, "the deletes counted"
    )
    metrics = scrape(url)  # still running: the endpoint lives in the daemon's loop
    assert run.alive()
    assert metrics["s3lb_events_indexed_total"] == len(fake_es.docs) == objects * ALB_LINES
    assert metrics["s3lb_messages_received_total"] == objects
    assert metrics["s3lb_messages_deleted_total"] == objects
    assert metrics["s3lb_objects_started_total"] == objects
    assert metrics["s3lb_objects_done_total"] == objects
    assert metrics["s3lb_events_duplicate_total"] == 0
    assert metrics["s3lb_events_rejected_total"] == 0
    assert metrics["s3lb_objects_failed_total"] == 0
    bulk_requests = metrics["s3lb_bulk_requests_total"]
    assert 1 <= bulk_requests == sum(r.path.endswith("_bulk") for r in fake_es.requests)
    assert metrics["process_resident_memory_bytes"] > 0
    assert run.stop() == 0, run.log


def check(config_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check.yml"
    path.write_text(config_text)
    return s3lb_cli("check", "-c", str(path), "--timeout", "10", cwd=tmp_path, timeout=60)


def test_check_names_a_wrong_queue_url_and_an_unreachable_cluster_and_fails(
    aws: Aws, tmp_path: Path
) -> None:
    good = aws.queue()
    wrong = good.rsplit("/", 1)[0] + "/no-such-queue"
    dead_cluster = f"http://127.0.0.1:{free_port()}"
    result = check(config(queues=[good, wrong], es_url=dead_cluster), tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("ok    configuration: ") for line in lines), lines
    assert f"FAIL  queue {wrong}: no such queue: check the URL" in result.stdout
    assert f"FAIL  cluster {dead_cluster}: unreachable: ConnectError" in result.stdout
    # the good queue has no redrive policy: a warning, not a failure
    assert f"warn  queue {good}: 0 waiting, 0 in flight" in result.stdout
    assert "no redrive policy" in result.stdout
    assert lines[-1] == f"s3lb check: 2 of {len(lines) - 1} checks failed"


def test_check_says_when_the_cluster_refuses_the_credentials(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    fake_es.down = "401"
    text = config(
        queues=[aws.queue()],
        es_url=fake_es.url,
        es={"username": "s3lb", "password": "wrong"},
    )
    result = check(text, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAIL  cluster {fake_es.url}: credentials refused (HTTP 401)" in result.stdout


def test_check_passes_when_queues_buckets_and_cluster_answer(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    dlq = aws.queue()
    queue = aws.queue(
        RedrivePolicy=json.dumps({"deadLetterTargetArn": aws.queue_arn(dlq), "maxReceiveCount": 5})
    )
    bucket = aws.bucket()
    text = config(
        queues=[queue],
        inputs=[s3_input([bucket], log_format="auto")],
        es_url=fake_es.url,
        metrics=f"127.0.0.1:{free_port()}",
    )
    result = check(text, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "ok    aws credentials: from env: arn:aws:" in out
    assert f"ok    queue {queue}: 0 waiting, 0 in flight, visibility timeout 30s;" in out
    assert f"dead-letter queue {aws.queue_arn(dlq).rsplit(':', 1)[1]} after 5 receives" in out
    assert f"ok    bucket {bucket}: listable" in out
    assert f"ok    cluster {fake_es.url}: " in out
    assert "ok    state_dir ./state-test: will be created" in out
    assert out.splitlines()[-1].startswith("s3lb check: all ")


def test_check_reports_an_invalid_configuration_with_its_key_and_exit_2(tmp_path: Path) -> None:
    result = check("s3lb.wait_time: 1m\noutput.file.path: '-'\n", tmp_path)
    assert result.returncode == 2
    assert result.stdout.startswith("FAIL  configuration: s3lb.wait_time: ")


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """The unit as shipped, with ExecStart= pointing at this environment's s3lb (verify
    requires the program to exist; the unit names the documented /opt/s3lb venv)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing in CI: apt-get install systemd")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    program = Path(sys.executable).parent / "s3lb"
    assert program.exists(), "the s3lb console script of this environment"
    text = UNIT.read_text()
    assert "ExecStart=/opt/s3lb/bin/s3lb run -c /etc/s3lb/s3lb.yml" in text
    unit = tmp_path / "s3lb.service"
    unit.write_text(text.replace("/opt/s3lb/bin/s3lb", str(program)))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no warnings either


def test_sighup_and_sigusr_are_logged_and_ignored_and_sigterm_still_drains(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess]
) -> None:
    """Issue 16.8: SIGHUP and SIGUSR1 used to kill the daemon like kill -9 (no drain)."""
    import signal

    queue, _ = aws.quiet_queue()
    run = daemon(config(queues=[queue], es_url=fake_es.url))
    for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        run.process.send_signal(signum)
        name = signum.name
        wait_until(lambda name=name: f"signal={name}" in run.log, 10, f"{name} logged")
        assert run.alive(), run.log
    assert run.log.count("signal received; ignored") == 3
    assert run.stop() == 0, run.log
    assert "s3lb stopped" in run.log


def s3_inputs(buckets: list[str], es_url: str) -> str:
    """A configuration whose only inputs are ``type: s3``, as the docs write them."""
    return f"""
s3lb:
  state_dir: ./state-test
  inputs:
    - type: s3
      buckets: {json.dumps(buckets)}
      log_format: alb
output.elasticsearch.hosts: ["{es_url}"]
"""


def test_check_lists_s3_inputs_written_as_bucket_urls_like_import_does(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    """Issue 12: ``s3://bucket`` was listed as a bucket named ``s3://bucket``."""
    bucket = aws.bucket()
    aws.put(bucket, "prefix/a.log", ALB)
    urls = [f"s3://{bucket}", f"s3://{bucket}/prefix/", f"s3://{bucket}/nothing-here/"]
    result = check(s3_inputs(urls, fake_es.url), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for url in urls:
        assert f"ok    bucket {url}: listable" in result.stdout
    missing = check(s3_inputs(["s3://no-such-bucket-here/x/"], fake_es.url), tmp_path)
    assert missing.returncode == 1
    assert "FAIL  bucket s3://no-such-bucket-here/x/: no such bucket (NoSuchBucket)" in (
        missing.stdout
    )


def test_check_takes_the_seed_s3imports_configuration(aws: Aws, tmp_path: Path) -> None:
    """``tests/data/seed/configs/config_s3imports.yml`` names ``s3://mybucket/mypath``."""
    aws.s3.create_bucket(Bucket="mybucket")
    text = (SEED_DIR / "configs" / "config_s3imports.yml").read_text()
    result = check(text, tmp_path)
    assert "ok    bucket s3://mybucket/mypath: listable" in result.stdout, result.stdout


def test_check_never_prints_the_password_of_a_host_url(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    """Issue 16.5: ``http://elastic:<password>@…`` was printed as written."""
    secret = "s3cr3t-Pa55"
    live = fake_es.url.replace("http://", f"http://elastic:{secret}@")
    dead = f"http://elastic:{secret}@127.0.0.1:{free_port()}"
    result = check(config(queues=[aws.queue()], es_url=live, es={"hosts": [live, dead]}), tmp_path)
    out = result.stdout + result.stderr
    assert secret not in out
    assert f"ok    cluster {live.replace(secret, '***')}: " in result.stdout
    assert f"FAIL  cluster {dead.replace(secret, '***')}: unreachable" in result.stdout


def test_the_running_line_names_the_output_as_configured_without_its_password(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess]
) -> None:
    secret = "s3cr3t-Pa55"
    queue, _ = aws.quiet_queue()
    host = fake_es.url.replace("http://", f"http://elastic:{secret}@")
    run = daemon(config(queues=[queue], es_url=host))
    assert run.stop() == 0, run.log
    line = next(line for line in run.log.splitlines() if "s3lb is running" in line)
    assert line.endswith(f"output=elasticsearch hosts=http://elastic:***@{fake_es.url[7:]}")
    assert secret not in run.log
