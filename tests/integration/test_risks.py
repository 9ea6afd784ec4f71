"""Issue 16 item 11: the risks decided, seen from outside (see docs/reliability.md,
"Issue 16 — item 11 decisions"): one daemon per state_dir; one bad record of a message
costs only itself; a bucket S3 does not know keeps its messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from s3lb.checkpoint.lock import LOCK_FD_ENV, StateDirInUse, lock_state_dir
from s3lb.errors import CheckpointError
from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.integration.test_run import config
from tests.support.daemon import S3lbProcess
from tests.support.helpers import ALB, ALB_LINES, event_record, expected_ids, wait_until

# -- two daemons on one state_dir --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_a_second_daemon_on_the_same_state_dir_exits_1_naming_the_dir_and_the_holder(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess], tmp_path: Path, processes: int
) -> None:
    """With two processes the supervisor holds the lock for its workers."""
    queue, _bucket = aws.quiet_queue()
    text = config(queues=[queue], es_url=fake_es.url, processes=processes)
    first = daemon(text)
    second = subprocess.run(
        [sys.executable, "-m", "s3lb", "run", "-c", str(tmp_path / "s3lb.yml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert "state-test" in lines[0] and "in use" in lines[0]
    assert f"PID {first.process.pid}" in lines[0]
    assert first.alive()  # the first one is untouched
    assert first.stop() == 0

    # Once the first has stopped, the state_dir is free again.
    again = daemon(text)
    assert again.stop() == 0


def test_s3lb_import_refuses_a_state_dir_a_daemon_holds(tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(state)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        (tmp_path / "s3lb.yml").write_text(_IMPORT_CONFIG.format(state=state))
        result = subprocess.run(
            [sys.executable, "-m", "s3lb", "import", "-c", str(tmp_path / "s3lb.yml")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
        )
        assert result.returncode == 1, result.stderr
        assert f"state_dir {state} is in use" in result.stderr
        assert f"PID {holder.pid}" in result.stderr
        # A dry run changes nothing: it may run beside a daemon (it fails later, here,
        # only because the bucket cannot be reached).
        dry = subprocess.run(
            [sys.executable, "-m", "s3lb", "import", "--dry-run", "-c", "s3lb.yml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
        )
        assert "is in use" not in dry.stderr
        state_cmd = subprocess.run(
            [sys.executable, "-m", "s3lb", "state", "-c", "s3lb.yml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "is in use" not in state_cmd.stderr  # read-only: never takes the lock
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


_HOLD = """
import sys, time
from s3lb.checkpoint.lock import lock_state_dir
lock = lock_state_dir(sys.argv[1])
print("held", flush=True)
time.sleep(120)
"""

_IMPORT_CONFIG = """
s3lb:
  state_dir: {state}
  inputs:
    - type: s3
      buckets: ["s3://some-bucket/logs/"]
      log_format: alb
output.elasticsearch:
  hosts: ["http://127.0.0.1:9"]
"""


def test_the_lock_is_exclusive_within_one_process_too_and_released_on_exit(
    tmp_path: Path,
) -> None:
    with lock_state_dir(tmp_path / "s") as lock:
        assert (tmp_path / "s" / "daemon.lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(StateDirInUse, match=f"PID {os.getpid()}"):
            lock_state_dir(tmp_path / "s")
        assert not lock.inherited
    with lock_state_dir(tmp_path / "s"):
        pass


def test_a_worker_process_works_under_its_parents_lock_through_the_inherited_fd(
    tmp_path: Path,
) -> None:
    """Workers of one daemon share its store: a child started with the lock's fd and
    :meth:`StateLock.child_env` takes it over; without the fd, the variable grants
    nothing."""
    child = (
        "import sys\nfrom s3lb.checkpoint.lock import lock_state_dir\n"
        "try:\n    lock = lock_state_dir(sys.argv[1])\nexcept Exception as exc:\n"
        "    print(type(exc).__name__, exc)\nelse:\n    print('inherited', lock.inherited)\n"
    )
    with lock_state_dir(tmp_path / "s") as lock:
        env = {**os.environ, **lock.child_env()}
        shared = subprocess.run(
            [sys.executable, "-c", child, str(tmp_path / "s")],
            env=env,
            pass_fds=(lock.fd,),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shared.stdout.strip() == "inherited True", shared.stderr
        # The variable without the descriptor: refused.
        forged = subprocess.run(
            [sys.executable, "-c", child, str(tmp_path / "s")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert forged.stdout.startswith("CheckpointError"), forged.stdout + forged.stderr
        assert LOCK_FD_ENV in forged.stdout
        # And a plain second process is refused, naming this one.
        plain = subprocess.run(
            [sys.executable, "-c", child, str(tmp_path / "s")],
            env={k: v for k, v in env.items() if k != LOCK_FD_ENV},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert plain.stdout.startswith("StateDirInUse"), plain.stdout + plain.stderr
        assert f"PID {os.getpid()}" in plain.stdout


_ORPHANING_DAEMON = """
import subprocess, sys
from s3lb.checkpoint.lock import lock_state_dir
lock = lock_state_dir(sys.argv[1])
# A worker: holds the inherited lock until its stdin (this process's) ends.
subprocess.Popen(
    [sys.executable, "-c", "import sys; print('worker up', flush=True); sys.stdin.read()"],
    pass_fds=(lock.fd,),
)
"""


@pytest.fixture
def orphaned_lock(tmp_path: Path) -> Iterator[tuple[Path, int, Callable[[], None]]]:
    """A state_dir whose daemon exited leaving a worker that holds its lock: the
    directory, the gone daemon's PID and what makes the worker let go."""
    state = tmp_path / "s"
    gone = subprocess.Popen(
        [sys.executable, "-c", _ORPHANING_DAEMON, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert gone.stdin is not None and gone.stdout is not None
    try:
        assert gone.stdout.readline().strip() == "worker up"
        assert gone.wait(60) == 0  # gone (and reaped), its worker orphaned
        yield state, gone.pid, gone.stdin.close
    finally:
        gone.stdin.close()  # the end of the orphan's stdin: it exits
        gone.stdout.close()


def test_a_restart_waits_for_the_orphaned_workers_of_a_daemon_that_is_gone(
    orphaned_lock: tuple[Path, int, Callable[[], None]],
) -> None:
    """A daemon killed with kill -9 leaves its workers holding the lock until they see
    it gone; a restart then waits for them rather than refusing to start."""
    state, _gone, release = orphaned_lock
    timer = threading.Timer(0.5, release)  # the orphan notices its supervisor is gone
    timer.start()
    try:
        with lock_state_dir(state) as lock:
            assert (state / "daemon.lock").read_text() == f"{os.getpid()}\n"
            assert not lock.inherited
    finally:
        timer.cancel()


def test_orphans_that_never_let_go_are_named_after_the_wait(
    orphaned_lock: tuple[Path, int, Callable[[], None]],
) -> None:
    state, gone, _release = orphaned_lock
    with pytest.raises(StateDirInUse) as info:
        lock_state_dir(state, orphan_wait=0.2)
    message = str(info.value)
    assert f"worker processes of s3lb PID {gone}, which is gone" in message
    assert f"fuser -v {state / 'daemon.lock'}" in message


def test_an_unusable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CheckpointError, match="cannot use the checkpoint store") as info:
        lock_state_dir(blocker / "state")
    assert "writable" in str(info.value)


# -- one bad record in a message ----------------------------------------------------------


@pytest.mark.slow
def test_a_bad_record_is_dead_lettered_alone_and_the_good_records_objects_are_indexed(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess], tmp_path: Path
) -> None:
    dlq = aws.queue()
    queue = aws.queue(
        VisibilityTimeout=2,
        RedrivePolicy=json.dumps({"deadLetterTargetArn": aws.queue_arn(dlq), "maxReceiveCount": 2}),
    )
    bucket = aws.bucket()
    keys = ["prod-web/a.log.gz", "prod-web/b.log.gz"]
    expected: set[str] = set()
    records = []
    for key in keys:
        etag = aws.put(bucket, key, ALB, compress=True)
        expected |= expected_ids(bucket, key, etag, ALB_LINES)
        records.append(event_record(bucket, key, etag, key))
    bad = event_record(bucket, "prod-web/c.log.gz", "e", "prod-web/100%.log.gz")
    aws.send(queue, {"Records": [records[0], bad, records[1]]})

    run = daemon(config(queues=[queue], es_url=fake_es.url))
    wait_until(lambda: {i for _, i in fake_es.docs} == expected, 30, "the good objects")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the message deleted")
    assert run.stop() == 0, run.log
    assert aws.counts(dlq) == (0, 0)  # not redriven: its good objects were delivered
    entries = [
        json.loads(line)
        for path in (tmp_path / "state-test" / "dead-letter").glob("*.ndjson")
        for line in path.read_text().splitlines()
    ]
    assert [(e["kind"], e["queue"], e["record"]) for e in entries] == [("notification", queue, 1)]
    assert "malformed %-escape" in entries[0]["reason"]
    assert json.loads(entries[0]["raw"]) == bad
    assert "notification record cannot be decoded; dead-lettered" in run.log


# -- a bucket that does not exist ---------------------------------------------------------


@pytest.mark.slow
def test_a_bucket_s3_does_not_know_keeps_its_messages_and_is_reported_once_a_minute(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess]
) -> None:
    """NoSuchBucket (a wrong endpoint, a deleted bucket) is not an object gone: its
    message stays for the redrive policy, and one error line names the bucket and the
    endpoint however often it comes back; NoSuchKey still deletes."""
    dlq = aws.queue()
    queue = aws.queue(
        VisibilityTimeout=1,
        RedrivePolicy=json.dumps({"deadLetterTargetArn": aws.queue_arn(dlq), "maxReceiveCount": 3}),
    )
    bucket = aws.bucket()
    missing_bucket = "no-such-bucket-s3lb"
    aws.send(
        queue, {"Records": [event_record(missing_bucket, "prod-web/a.log", "e", "prod-web/a.log")]}
    )
    aws.send(
        queue, {"Records": [event_record(bucket, "prod-web/gone.log", "", "prod-web/gone.log")]}
    )

    run = daemon(config(queues=[queue], es_url=fake_es.url))
    wait_until(lambda: aws.counts(dlq)[0] == 1, 30, "the message redriven to the DLQ")
    wait_until(lambda: aws.counts(queue) == (0, 0), 30, "the NoSuchKey message deleted")
    assert run.stop() == 0, run.log
    moved = aws.sqs.receive_message(QueueUrl=dlq)["Messages"][0]["Body"]
    assert missing_bucket in moved  # the kept one is the missing bucket's
    errors = [line for line in run.log.splitlines() if "bucket does not exist" in line]
    assert len(errors) == 1, errors  # three receives, one line
    assert missing_bucket in errors[0] and aws.endpoint in errors[0]
    assert "object gone; nothing to ship" in run.log and "NoSuchKey" in run.log
