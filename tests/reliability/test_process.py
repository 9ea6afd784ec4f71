"""Process tier (T2) of RELIABILITY.md: ``s3lb run`` (and ``s3lb import``) as
subprocesses against moto (S3/SQS over HTTP) and the fake cluster's HTTP server, with
the real LMDB store, signals, crash points and sockets (the TCP fault proxy)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from s3lb.crashpoints import NAMES
from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.reliability.corpus import (
    Corpus,
    alb_key,
    alb_lines,
    custom_object,
    generate,
)
from tests.reliability.harness import dead_letters
from tests.reliability.process import (
    check_delivered,
    check_store,
    daemon_config,
    notify,
    upload,
)
from tests.reliability.proxy import FaultProxy
from tests.support.daemon import S3lbProcess
from tests.support.helpers import state_json, wait_until

pytestmark = pytest.mark.slow


class SendCounter:
    """Counts every ``_id`` the cluster is sent (an ``item_plan`` that never interferes).

    The fake cluster answers on its own threads, and a killed daemon's last request
    may still be counted while a test reads: every access holds ``_lock``."""

    def __init__(self, es: FakeEs) -> None:
        self._lock = threading.Lock()
        self._sent: Counter[str] = Counter()
        es.item_plan = self._see

    def _see(self, doc_id: str, _position: int) -> None:
        with self._lock:
            self._sent[doc_id] += 1

    def snapshot(self) -> Counter[str]:
        """The counts so far (a copy)."""
        with self._lock:
            return Counter(self._sent)

    def since(self, snapshot: Counter[str]) -> set[str]:
        """Ids sent since ``snapshot``."""
        return {i for i, n in self.snapshot().items() if n > snapshot.get(i, 0)}


def big_corpus(seed: int) -> Corpus:
    """A big plain object, a big gzip one and a few small ones of other formats."""
    plain = custom_object(1, alb_key(1), ("\n".join(alb_lines(1, 12000)) + "\n").encode())
    packed = custom_object(
        2,
        alb_key(2, ".gz"),
        ("\n".join(alb_lines(2, 12000)) + "\n").encode(),
        compressed=True,
    )
    small = generate(seed, objects=10, records=(5, 60), first_oid=3)
    return Corpus([plain, packed, *small.objects])


# -- R9 ---------------------------------------------------------------------------------

CRASHES = {  # the n-th passage: far enough in for work to be in flight
    "after_es_ack": 6,
    "before_ckpt_commit": 4,
    "mid_lmdb_txn": 5,
    "after_ckpt_commit": 4,
    "after_done_mark": 1,
    "before_delete": 1,
}


def kill_tree(runner: S3lbProcess) -> None:
    """SIGKILL the supervisor's workers, then the supervisor (``processes`` > 1)."""
    assert runner.process is not None
    for task in Path(f"/proc/{runner.process.pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for pid in (task / "children").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
    runner.kill()


@pytest.mark.parametrize("processes", [1, 2])
def test_r9_a_crash_at_every_named_point_then_restart_loses_and_doubles_nothing(
    aws: Aws, fake_es: FakeEs, tmp_path: Path, processes: int
) -> None:
    """R9 (I1–I3, I5, I9): the daemon is crashed at each named crash point in turn
    (exit 137, as after kill -9) and restarted: after each crash the store opens cleanly
    and no watermark is ahead of the cluster; each restart re-sends at most one batch per
    worker (plus one) of what was acknowledged; the big plain object resumes with a Range
    GET; in the end each expected id is indexed once with the oracle's body. With two
    processes the worker that reaches the point crashes, and then every process is
    SIGKILLed."""
    assert set(CRASHES) == set(NAMES)
    corpus = big_corpus(9)
    queue = aws.queue(VisibilityTimeout=2)
    bucket = aws.bucket()
    upload(aws, bucket, corpus)
    notify(aws, queue, corpus.objects[:2])
    notify(aws, queue, corpus.objects[2:], per_message=3)
    fake_es.latency = 0.03
    state_dir = tmp_path / "state"
    batch, workers = 500, 2
    config = daemon_config(
        state_dir,
        [queue],
        fake_es.url,
        processes=processes,
        es={"bulk_max_size": batch, "worker": workers},
    )
    sent = SendCounter(fake_es)
    owner = {obj.doc_id(r.position): obj.key for obj in corpus.objects for r in obj.records}
    replays: dict[str, dict[str, int]] = {}  # restart after crash point -> key -> re-sent
    with S3lbProcess(tmp_path, config) as runner:
        previous = "start"
        for name, n in [*CRASHES.items(), ("none", 0)]:
            seen = sent.snapshot()
            if name == "none":
                runner.start(wait=True)
                wait_until(
                    lambda: (
                        aws.counts(queue) == (0, 0)
                        and len(fake_es.docs) >= len(corpus.expected_ids())
                    ),
                    120,
                    "the last run to finish",
                )
                assert runner.terminate() == 0
            else:
                runner.start({"S3LB_CRASH_AT": f"{name}:{n}"})
                if processes == 1:
                    status = runner.wait(120)
                    assert status == 137, (name, status, runner.log[-2000:])
                else:
                    wait_until(lambda: f"crash point {name} reached" in runner.log, 120, name)  # noqa: B023
                    kill_tree(runner)
                assert f"crash point {name} reached" in runner.log
                check_store(state_dir, corpus, fake_es)
            again = Counter(owner[i] for i in sent.since(seen) if i in seen)
            replays[f"after {previous}"] = dict(again)
            previous = name
    print("R9 records re-sent per object after each crash:", replays)
    check_delivered(corpus, fake_es)
    worst = max((n for again in replays.values() for n in again.values()), default=0)
    assert worst <= (workers + 1) * batch, replays  # I9
    assert "resuming object from its checkpoint" in runner.logs
    assert "ranged=True" in runner.logs  # the plain object resumed with a Range GET
    assert "checkpoint store was corrupt" not in runner.logs
    final = state_json(runner.config_path)
    assert {o["status"] for o in final["objects"]} == {"done"}


# -- R10 --------------------------------------------------------------------------------


@pytest.mark.parametrize("processes", [1, 2])
def test_r10_sigterm_under_load_commits_acks_releases_messages_and_exits_0(
    aws: Aws, fake_es: FakeEs, tmp_path: Path, processes: int
) -> None:
    """R10 (I1, I5, I9): SIGTERM while objects are half shipped: exit 0; the final
    checkpoints are committed (a restart resumes and re-sends at most a batch per
    worker); unfinished messages are visible again at once (released, not left to a
    60 s visibility timeout); nothing is acknowledged after the exit; I1 after restart.
    With two processes the SIGTERM drains both workers, neither is killed, and the
    restart resumes objects from the checkpoints both wrote."""
    corpus = big_corpus(10)
    queue = aws.queue(VisibilityTimeout=60)
    bucket = aws.bucket()
    upload(aws, bucket, corpus)
    notify(aws, queue, corpus.objects)
    fake_es.latency = 0.05
    state_dir = tmp_path / "state"
    batch, workers = 500, 2
    config = daemon_config(
        state_dir,
        [queue],
        fake_es.url,
        shutdown_timeout="1s",
        processes=processes,
        es={"bulk_max_size": batch, "worker": workers},
    )
    with S3lbProcess(tmp_path, config) as runner:
        runner.start(wait=True)
        wait_until(lambda: len(fake_es.docs) > 5000, 60, "a third of the work")
        assert runner.terminate() == 0
        # A bulk cut off by the exit is recorded once the fake's latency has passed.
        time.sleep(fake_es.latency + 0.25)
        requests_at_exit = len(fake_es.requests)
        acked = check_store(state_dir, corpus, fake_es)
        assert acked.get(corpus.objects[0].key, 0) > 0
        visible, in_flight = aws.counts(queue)
        assert in_flight == 0 and visible > 0  # released at once, not after 60 s
        assert "s3lb stopped" in runner.log
        # every worker drained, within shutdown_timeout: none had to be killed
        assert runner.log.count("stopped receiving; draining") == processes, runner.log
        assert "did not exit in time" not in runner.log
        time.sleep(0.5)
        assert len(fake_es.requests) == requests_at_exit  # nothing after the exit
        before = fake_es.item_statuses[409]
        runner.start(wait=True)
        wait_until(lambda: aws.counts(queue) == (0, 0), 120, "the restart to finish")
        assert runner.terminate() == 0
        assert "resuming object from its checkpoint" in runner.log  # mid-object
    check_delivered(corpus, fake_es)
    # I9: a batch per bulk worker, of each process
    assert fake_es.item_statuses[409] - before <= processes * workers * batch


# -- R11 (process tier: a real socket reset between s3lb and S3) ------------------------


def test_r11_s3_connection_resets_through_a_proxy_lose_and_double_nothing(
    aws: Aws, fake_es: FakeEs, tmp_path: Path, moto_url: str
) -> None:
    """R11 (I1, I2) with real sockets: S3 GETs go through the fault proxy, which resets
    the first connections mid-body; every record still arrives exactly once."""
    corpus = big_corpus(11)
    queue = aws.queue(VisibilityTimeout=2)
    bucket = aws.bucket()
    upload(aws, bucket, corpus)
    host, port = moto_url.removeprefix("http://").split(":")
    with FaultProxy((host, int(port))) as proxy:
        proxy.reset_after = 300_000
        notify(aws, queue, corpus.objects[:2])
        env = {"AWS_ENDPOINT_URL_S3": proxy.url}
        config = daemon_config(tmp_path / "state", [queue], fake_es.url, object_workers=1)
        with S3lbProcess(tmp_path, config, env) as runner:
            runner.start(wait=True)
            wait_until(lambda: proxy.resets > 0, 60, "a reset")
            notify(aws, queue, corpus.objects[2:], per_message=3)
            wait_until(lambda: aws.counts(queue) == (0, 0), 120, "the queue to drain")
            assert runner.terminate() == 0
    check_delivered(corpus, fake_es)
    print("R11 in-place resume:", "S3 read interrupted; resuming" in runner.logs)


# -- R16 --------------------------------------------------------------------------------


@pytest.mark.parametrize("processes", [1, 2])
def test_r16_a_401_cluster_sends_every_message_to_the_dlq_via_max_hold(
    aws: Aws, fake_es: FakeEs, tmp_path: Path, processes: int
) -> None:
    """R16 with moto's redrive policy: the cluster refuses every request with 401: no
    document, no dead letter, no delete; messages are released after ``max_hold`` and
    moto moves them to the DLQ after 3 receives; the log says the cluster is down."""
    corpus = generate(16, formats=["alb", "vpcflow"], objects=4, records=(3, 8))
    dlq = aws.queue()
    queue = aws.queue(
        VisibilityTimeout=2,
        RedrivePolicy=json.dumps({"deadLetterTargetArn": aws.queue_arn(dlq), "maxReceiveCount": 3}),
    )
    bucket = aws.bucket()
    upload(aws, bucket, corpus)
    notify(aws, queue, corpus.objects)
    fake_es.down = "401"
    config = daemon_config(
        tmp_path / "state", [queue], fake_es.url, max_hold="1s", processes=processes
    )
    with S3lbProcess(tmp_path, config) as runner:
        runner.start(wait=True)
        wait_until(lambda: aws.counts(dlq)[0] == 4, 60, "every message in the DLQ")
        assert runner.terminate() == 0
    assert fake_es.docs == {} and not dead_letters(tmp_path / "state")
    assert "cluster unavailable; retrying with backoff" in runner.log and "HTTP 401" in runner.log
    assert "message held for max_hold; released to the queue" in runner.log


# -- R17 --------------------------------------------------------------------------------


def test_r17_a_corrupt_store_is_quarantined_loudly_and_delivery_goes_on(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    """R17 corrupt (I1, I2): the store is overwritten with garbage between runs: the
    next start moves it to quarantine-* with a REASON, logs it loudly, starts empty and
    ships everything; re-sent documents are absorbed by their ids."""
    corpus = generate(17, objects=6, records=(20, 200))
    queue = aws.queue(VisibilityTimeout=2)
    bucket = aws.bucket()
    upload(aws, bucket, corpus)
    notify(aws, queue, corpus.objects[:3])
    state_dir = tmp_path / "state"
    with S3lbProcess(tmp_path, daemon_config(state_dir, [queue], fake_es.url)) as runner:
        runner.start(wait=True)
        wait_until(lambda: aws.counts(queue) == (0, 0), 60, "the first objects")
        assert runner.terminate() == 0
        data = state_dir / "checkpoint" / "data.mdb"
        data.write_bytes(os.urandom(data.stat().st_size))
        notify(aws, queue, corpus.objects)  # the first three again, and three more
        runner.start(wait=True)
        wait_until(lambda: aws.counts(queue) == (0, 0), 60, "every object")
        assert runner.terminate() == 0
    assert "checkpoint store was corrupt" in runner.log
    (quarantine,) = state_dir.glob("quarantine-*")
    assert (quarantine / "REASON").read_text().strip()
    check_delivered(corpus, fake_es)
    assert fake_es.item_statuses[409] > 0


@pytest.mark.parametrize("processes", [1, 2])
def test_r17_a_full_store_stops_the_daemon_with_the_fix_not_a_crash_loop(
    aws: Aws, fake_es: FakeEs, tmp_path: Path, processes: int
) -> None:
    """R17 map full: a store too small for its objects stops the daemon with exit 1
    and a message naming ``checkpoint.map_size`` and ``s3lb state``; nothing committed
    is lost, and with a bigger map the next run finishes the job (I1, I2). With two
    processes the worker that finds it full stops them all (it used to be restarted,
    and to fill the store again, until the test timed out)."""
    corpus = generate(171, formats=["alb"], objects=120, records=(1, 3))
    queue = aws.queue(VisibilityTimeout=2)
    bucket = aws.bucket()
    upload(aws, bucket, corpus)
    notify(aws, queue, corpus.objects, per_message=1)
    state_dir = tmp_path / "state"
    small = daemon_config(
        state_dir, [queue], fake_es.url, processes=processes, checkpoint={"map_size": 64 * 1024}
    )
    with S3lbProcess(tmp_path, small) as runner:
        runner.start()
        assert runner.wait(60) == 1, runner.log[-3000:]
        assert "is full" in runner.log and "checkpoint.map_size" in runner.log
        assert "s3lb state" in runner.log
        assert "Traceback" not in runner.log
        assert "worker process died; restarting" not in runner.log  # no restart loop
        runner.config_path.write_text(
            daemon_config(
                state_dir,
                [queue],
                fake_es.url,
                processes=processes,
                checkpoint={"map_size": 1 << 24},
            )
        )
        runner.start(wait=True)
        wait_until(lambda: aws.counts(queue) == (0, 0), 60, "the rest")
        assert runner.terminate() == 0
    check_delivered(corpus, fake_es)


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.mark.parametrize("processes", [1, 2])
def test_r17_a_read_only_state_dir_is_a_clear_error_and_never_quarantined(
    aws: Aws, fake_es: FakeEs, tmp_path: Path, processes: int
) -> None:
    """R17 read-only: state_dir on a read-only filesystem (a tmpfs mounted ro, which
    binds root too): exit 1 with ``cannot use the checkpoint store`` and the fix, no
    traceback, nothing moved aside."""
    state_dir = tmp_path / "ro-state"
    if not _mount_tmpfs(state_dir, "ro,size=1m"):
        pytest.skip("needs root and mount -t tmpfs (a read-only filesystem binds root too)")
    try:
        queue = aws.queue()
        config = daemon_config(state_dir, [queue], fake_es.url, processes=processes)
        with S3lbProcess(tmp_path, config) as runner:
            runner.start()
            assert runner.wait(60) == 1, runner.log
        assert "cannot use the checkpoint store" in runner.log and "writable" in runner.log
        assert "Traceback" not in runner.log
        assert not list(state_dir.glob("quarantine-*"))
    finally:
        _umount(state_dir)


@pytest.mark.parametrize("processes", [1, 2])
def test_r17_a_full_disk_is_logged_once_delivery_goes_on_and_the_backlog_drains_after(
    aws: Aws, fake_es: FakeEs, tmp_path: Path, processes: int
) -> None:
    """R17 disk full (I1, I2, I7): state_dir is a 2 MiB tmpfs that fills up while the
    daemon runs: ``checkpoint commit failed`` is logged once (by each worker process
    that meets it) and objects keep being shipped; objects with unparseable lines
    (which cannot be dead-lettered now) keep their messages; once space is freed they
    are redelivered and complete. No worker process is restarted for it."""
    state_dir = tmp_path / "small-state"
    if not _mount_tmpfs(state_dir, "size=2m"):
        pytest.skip("needs root and mount -t tmpfs for a small filesystem")
    try:
        good = generate(172, formats=["alb", "waf"], objects=10, records=(20, 80))
        bad = generate(
            173,
            formats=["alb", "elb"],
            objects=4,
            records=(10, 30),
            bad_line_ratio=0.3,
            first_oid=100,
        )
        assert all(o.failed_positions() for o in bad.objects)
        queue = aws.queue(VisibilityTimeout=2)
        bucket = aws.bucket()
        upload(aws, bucket, good.objects + bad.objects)
        config = daemon_config(state_dir, [queue], fake_es.url, processes=processes)
        with S3lbProcess(tmp_path, config) as runner:
            runner.start(wait=True)
            notify(aws, queue, good.objects[:2])
            wait_until(lambda: aws.counts(queue) == (0, 0), 60, "the first objects")
            filler = state_dir / "filler"
            with filler.open("wb") as out, pytest.raises(OSError):
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
                    os.fsync(out.fileno())
            notify(aws, queue, good.objects[2:], per_message=2)
            notify(aws, queue, bad.objects)
            wait_until(
                lambda: good.expected_ids() <= {i for _, i in fake_es.docs},
                60,
                "the objects without bad lines, on a full disk",
            )
            assert runner.alive()
            assert sum(aws.counts(queue)) > 0  # the objects with bad lines wait
            filler.unlink()
            wait_until(lambda: aws.counts(queue) == (0, 0), 60, "the backlog after the fix")
            assert runner.terminate() == 0
        assert 1 <= runner.log.count("checkpoint commit failed") <= processes, runner.log
        assert "worker process died" not in runner.log
        check_delivered(Corpus(good.objects + bad.objects), fake_es)
        unparsed = {(e["key"], e["position"]) for e in dead_letters(state_dir)}
        assert unparsed == {(o.key, p) for o in bad.objects for p in o.failed_positions()}
    finally:
        _umount(state_dir)


# -- R20 --------------------------------------------------------------------------------


def _moto_put_many(bucket: str, keys: list[str], body: bytes) -> None:
    """Create objects straight in moto's in-process backend (HTTP PUTs of thousands of
    keys would take a minute); the daemon still reads them over HTTP."""
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["aws"]
    for key in keys:
        backend.put_object(bucket, key, body)


def test_r20_import_lists_a_window_of_5k_keys_survives_kill_9_and_reruns_as_a_no_op(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    """R20 (I1, I2): ``s3lb import --since --to`` over 5000 keys (listing pages of
    1000), 800 of them in the window: killed with SIGKILL half way, rerun, it finishes
    with exactly the window's documents; a third run sends nothing."""
    bucket = aws.bucket()
    line = ("\n".join(alb_lines(0, 2)) + "\n").encode()
    before = [f"imp/a-{i:05d}.log" for i in range(2100)]
    inside = [f"imp/b-{i:05d}.log" for i in range(800)]
    after = [f"imp/c-{i:05d}.log" for i in range(2100)]
    _moto_put_many(bucket, before, line)
    time.sleep(1.2)  # S3 LastModified has a resolution of one second
    since = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.0)
    _moto_put_many(bucket, inside, line)
    time.sleep(1.2)
    to = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.0)
    _moto_put_many(bucket, after, line)
    objects = [custom_object(n, key, line, bucket=bucket) for n, key in enumerate(inside, start=1)]
    for obj in objects:
        obj.etag = aws.s3.head_object(Bucket=bucket, Key=obj.key)["ETag"].strip('"')
    corpus = Corpus(objects)
    config = daemon_config(
        tmp_path / "state", [], fake_es.url, buckets=[f"s3://{bucket}/imp/"], log_format="alb"
    )
    window = ["import", "--since", since.isoformat(), "--to", to.isoformat()]
    importer = S3lbProcess(tmp_path, config, command=window, split_output=True)
    with importer:
        importer.start()
        wait_until(lambda: len(fake_es.docs) > 500, 120, "a third of the window")
        importer.kill()
        assert len(fake_es.docs) < 1600
        importer.start()
        status, _, err = importer.finish(300)
        assert status == 0, err[-3000:]
    check_delivered(corpus, fake_es)
    requests = len(fake_es.requests)
    importer.start()
    status, _, err = importer.finish(300)
    assert status == 0, err[-3000:]
    assert len(fake_es.requests) == requests  # all done: nothing sent again
    check_delivered(corpus, fake_es)


# -- the fault proxy itself ---------------------------------------------------------------


def test_the_fault_proxy_passes_delays_resets_and_blackholes(fake_es: FakeEs) -> None:
    """The harness: through the proxy a request works, also delayed; ``reset``
    breaks it with a connection error; ``blackhole`` makes it time out."""
    host, port = fake_es.url.removeprefix("http://").split(":")
    with FaultProxy((host, int(port)), latency=0.3) as proxy:
        assert httpx.get(proxy.url + "/", timeout=5).status_code == 200
        proxy.set_mode("latency")
        assert httpx.get(proxy.url + "/", timeout=5).status_code == 200
        proxy.set_mode("reset")
        with pytest.raises(httpx.TransportError):
            httpx.get(proxy.url + "/", timeout=5)
        proxy.set_mode("blackhole")
        with pytest.raises(httpx.TimeoutException):
            httpx.get(proxy.url + "/", timeout=0.5)
        proxy.set_mode("pass")
        assert httpx.get(proxy.url + "/", timeout=5).status_code == 200
        assert proxy.resets >= 1
