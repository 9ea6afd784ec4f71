"""``s3lb run`` with ``processes: 2``: a supervisor and two workers on moto and the fake
cluster. What a user sees: every event indexed once, every message deleted, one
``READY=1``, one ``/metrics`` summing the workers, exit 0 on SIGTERM; a worker killed
with SIGKILL is restarted and nothing is lost; a supervisor killed with SIGKILL takes
its workers with it (they drain and exit) and the next start finishes the work."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3lb.config.cores import usable_cores
from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.reliability.corpus import Corpus, generate
from tests.reliability.process import daemon_config, notify, upload
from tests.support import helpers
from tests.support.daemon import S3lbProcess
from tests.support.helpers import (
    pid_alive,
    received,
    scrape,
    state_json,
    wait_until,
    worker_pids,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A unix datagram socket for NOTIFY_SOCKET (see ``helpers.notify_socket``)."""
    with helpers.notify_socket(30) as bound:
        yield bound


def check_once(corpus: Corpus, es: FakeEs) -> None:
    """Every expected ``_id`` exactly once, and nothing else."""
    ids = [doc_id for _, doc_id in es.docs]
    assert len(ids) == len(set(ids)), "an id in two indexes"
    assert set(ids) == corpus.expected_ids()


def setup(
    aws: Aws, tmp_path: Path, cluster: FakeEs, objects: int, records: tuple[int, int], **kw: Any
) -> tuple[Corpus, str, S3lbProcess]:
    """A corpus of ALB objects in moto, a queue, and a runner with ``processes: 2``
    (unless ``kw`` says otherwise)."""
    corpus = generate(4242, formats=["alb"], objects=objects, records=records, gzip_ratio=0.5)
    queue = aws.queue(VisibilityTimeout=3)
    bucket = aws.bucket()
    upload(aws, bucket, corpus)
    config = daemon_config(tmp_path / "state", [queue], cluster.url, **{"processes": 2, **kw})
    return corpus, queue, S3lbProcess(tmp_path, config)


def test_two_processes_ship_everything_once_with_one_ready_and_summed_metrics(
    aws: Aws, fake_es: FakeEs, tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    corpus, queue, runner = setup(aws, tmp_path, fake_es, 12, (50, 300))
    runner.config_path.write_text(
        runner.config_path.read_text().replace(
            '"s3lb"', '"metrics.listen": "127.0.0.1:0", "s3lb"', 1
        )
    )
    with runner:
        runner.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
        first = sock.recv(4096).decode()
        while first == "WATCHDOG=1" or first.startswith("STATUS="):
            first = sock.recv(4096).decode()
        assert first.startswith("READY=1\nSTATUS=polling: "), first
        assert runner.log.count("s3lb is running") == 2, runner.log  # one per worker
        match = re.search(r"metrics endpoint listening url=(\S+)", runner.log)
        assert match, runner.log
        notify(aws, queue, corpus.objects, per_message=2)
        expected = corpus.expected_ids()
        wait_until(lambda: {i for _, i in fake_es.docs} >= expected, 60, "every document")
        wait_until(lambda: aws.counts(queue) == (0, 0), 60, "the queue to empty")
        wait_until(
            lambda: scrape(match.group(1))["s3lb_messages_deleted_total"] == 6, 10, "the deletes"
        )
        metrics = scrape(match.group(1))
        assert metrics["s3lb_events_indexed_total"] == len(expected)
        assert metrics["s3lb_objects_done_total"] == 12
        assert metrics["s3lb_messages_received_total"] == 6
        assert metrics["s3lb_worker_processes"] == 2
        assert metrics["s3lb_worker_restarts_total"] == 0
        assert metrics["s3lb_worker_cpu_seconds"] > 0
        assert (
            metrics["s3lb_worker_resident_memory_bytes"] > metrics["process_resident_memory_bytes"]
        )
        notes = received(sock)
        assert not [n for n in notes if "READY=1" in n], notes  # READY once for the unit
        assert "WATCHDOG=1" in notes
        runner.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert runner.wait(5 + 45) == 0, runner.log
        assert any(n.startswith("STOPPING=1") for n in received(sock))
    check_once(corpus, fake_es)
    done = [o for o in state_json(runner.config_path)["objects"] if o["status"] == "done"]
    assert len(done) == 12  # s3lb state reads the one store every worker wrote


def test_a_worker_killed_mid_object_is_restarted_and_nothing_is_lost(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    corpus, queue, runner = setup(
        aws, tmp_path, fake_es, 6, (2000, 3000), es={"bulk_max_size": 100}
    )
    fake_es.latency = 0.05  # keeps objects half done long enough to kill a worker there
    with runner:
        runner.start(wait=True)
        wait_until(lambda: len(worker_pids(runner.log)) == 2, 30, "two workers")
        victim = worker_pids(runner.log)[1]
        notify(aws, queue, corpus.objects, per_message=1)
        wait_until(lambda: len(fake_es.docs) > 500, 60, "work under way")
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: "worker process died; restarting" in runner.log, 30, "the restart")
        wait_until(lambda: worker_pids(runner.log)[1] != victim, 30, "a new worker 1")
        expected = corpus.expected_ids()
        wait_until(lambda: {i for _, i in fake_es.docs} >= expected, 180, "every document")
        wait_until(lambda: aws.counts(queue) == (0, 0), 60, "the queue to empty")
        assert runner.terminate(60) == 0, runner.log
    check_once(corpus, fake_es)
    assert "worker=1 status=-9" in runner.log


def test_a_killed_supervisor_takes_its_workers_along_and_a_restart_finishes(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    corpus, queue, runner = setup(
        aws, tmp_path, fake_es, 6, (2000, 3000), es={"bulk_max_size": 100}
    )
    fake_es.latency = 0.05
    with runner:
        runner.start(wait=True)
        wait_until(lambda: len(worker_pids(runner.log)) == 2, 30, "two workers")
        pids = list(worker_pids(runner.log).values())
        notify(aws, queue, corpus.objects, per_message=2)
        wait_until(lambda: len(fake_es.docs) > 500, 60, "work under way")
        runner.kill()  # SIGKILL the supervisor only
        wait_until(lambda: not any(pid_alive(p) for p in pids), 5 + 30, "the workers to exit")
        assert "supervisor gone; stopping" in runner.log
        time.sleep(0.5)
        runner.start(wait=True)
        expected = corpus.expected_ids()
        wait_until(lambda: {i for _, i in fake_es.docs} >= expected, 180, "every document")
        wait_until(lambda: aws.counts(queue) == (0, 0), 60, "the queue to empty")
        assert runner.terminate(60) == 0, runner.log
    check_once(corpus, fake_es)


def test_a_second_sigterm_during_the_drain_stops_at_once_and_a_restart_finishes(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    corpus, queue, runner = setup(
        aws,
        tmp_path,
        fake_es,
        6,
        (2000, 3000),
        shutdown_timeout="60s",
        es={"bulk_max_size": 100},
    )
    fake_es.latency = 0.1  # the drain of 60 s cannot finish before the second signal
    with runner:
        runner.start(wait=True)
        notify(aws, queue, corpus.objects, per_message=1)
        wait_until(lambda: len(fake_es.docs) > 500, 60, "work under way")
        runner.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        wait_until(lambda: runner.log.count("stopped receiving; draining") == 2, 30, "drains")
        runner.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert runner.wait(30) == 0, runner.log
        assert "second signal; workers stop without waiting" in runner.log
        # a worker with nothing in flight may have finished its drain already
        assert "second stop; exiting without waiting worker=" in runner.log
        runner.start(wait=True)
        expected = corpus.expected_ids()
        wait_until(lambda: {i for _, i in fake_es.docs} >= expected, 180, "every document")
        wait_until(lambda: aws.counts(queue) == (0, 0), 60, "the queue to empty")
        assert runner.terminate(90) == 0, runner.log
    check_once(corpus, fake_es)


def test_a_store_found_corrupt_by_a_worker_stops_all_and_the_next_start_sets_it_aside(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    corpus, queue, runner = setup(aws, tmp_path, fake_es, 6, (20, 200))
    data = tmp_path / "state" / "checkpoint" / "data.mdb"
    with runner:
        runner.start(wait=True)
        notify(aws, queue, corpus.objects[:3])
        wait_until(lambda: aws.counts(queue) == (0, 0), 60, "the first objects")
        os.kill(worker_pids(runner.log)[1], signal.SIGKILL)
        data.write_bytes(os.urandom(data.stat().st_size))  # before worker 1 is restarted
        assert runner.wait(60) == 1, runner.log  # the supervisor decides: stop, exit 1
        assert "a worker found the checkpoint store damaged; stopping all" in runner.log
        notify(aws, queue, corpus.objects)  # the first three again, and three more
        runner.start(wait=True)
        wait_until(lambda: aws.counts(queue) == (0, 0), 60, "every object")
        assert runner.terminate(60) == 0, runner.log
    assert "checkpoint store was corrupt: moved aside" in runner.log
    (quarantine,) = (tmp_path / "state").glob("quarantine-*")
    assert (quarantine / "REASON").read_text().strip()
    check_once(corpus, fake_es)


def test_without_processes_run_starts_one_worker_per_usable_core(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    """The default is ``auto``: the cores this process may use (its affinity capped by a
    cgroup CPU quota), said at start; one on a one-core machine, with no supervisor."""
    count = min(usable_cores()[0], 64)
    corpus, queue, runner = setup(aws, tmp_path, fake_es, 4, (20, 50), processes=None)
    with runner:
        runner.start(wait=True)
        runner.wait_for(f"worker processes: {count} (auto: ")
        if count > 1:
            line = f"every worker process is running processes={count}"
            wait_until(lambda: line in runner.log, 60, "every worker")
        notify(aws, queue, corpus.objects)
        wait_until(lambda: aws.counts(queue) == (0, 0), 60, "the queue to empty")
        assert runner.terminate(60) == 0, runner.log
    assert runner.log.count("s3lb is running") == count
    check_once(corpus, fake_es)


def test_s3lb_state_shows_the_objects_in_flight_in_both_workers(
    aws: Aws, fake_es: FakeEs, tmp_path: Path
) -> None:
    """Two big objects, one message each, and one message in flight per worker
    (``max_inflight_messages: 1``): each worker reads one. ``s3lb state`` during the
    run shows both in progress, read from the one store both write."""
    corpus, queue, runner = setup(
        aws,
        tmp_path,
        fake_es,
        2,
        (4000, 5000),
        max_inflight_messages=1,
        es={"bulk_max_size": 100},
    )
    fake_es.latency = 0.2
    keys = {o.key for o in corpus.objects}

    def in_progress() -> set[str]:
        objects = state_json(runner.config_path)["objects"]
        return {o["key"] for o in objects if o["status"] == "in_progress" and o["acked"] > 0}

    with runner:
        runner.start(wait=True)
        runner.wait_for("every worker process is running", 60)
        notify(aws, queue, corpus.objects, per_message=1)
        wait_until(lambda: in_progress() == keys, 60, "both objects in progress at once")
        wait_until(lambda: aws.counts(queue) == (0, 0), 120, "the queue to empty")
        assert runner.terminate(60) == 0, runner.log
    check_once(corpus, fake_es)
    assert {o["key"] for o in state_json(runner.config_path)["objects"]} == keys
