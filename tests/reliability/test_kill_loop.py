"""The kill -9 loop: ``s3lb run`` killed at random moments, restarted each time, over a
mixed corpus (every format, gzip and plain, multi-object messages, unparseable lines,
an empty object) fed in waves so that kills land in the middle of work.

After the last kill a final run drains the queue; then every expected ``_id`` exists
exactly once and nothing else (I1, I2), bodies equal the oracle (I3), the dead-letter
store holds exactly the unparseable lines, and after every kill the checkpoint store
opens cleanly with no watermark ahead of what the cluster had acknowledged (I5).

CI runs 50 kills over a small corpus; ``S3LB_KILLS`` and ``S3LB_KILL_SEED`` change that
(see docs/reliability.md). The report line (kills, events, missing, extra…) is printed.
With ``processes: 2`` (20 kills, or ``S3LB_KILLS_2``) each kill is, at random, of the
supervisor and both workers at once, of the supervisor alone (its workers drain and
exit while the next run starts), or of one worker (restarted by the supervisor) and
then of everything.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.reliability.corpus import generate
from tests.reliability.harness import dead_letters
from tests.reliability.process import check_watermarks, daemon_config, notify, upload
from tests.support.daemon import S3lbProcess
from tests.support.helpers import wait_until

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("S3LB_KILLS", "50"))
KILLS_2 = int(os.environ.get("S3LB_KILLS_2", "20"))
SEED = int(os.environ.get("S3LB_KILL_SEED", "20251121"))


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (the worker processes of a supervisor)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_some(runner: S3lbProcess, rng: random.Random, report: dict[str, object]) -> None:
    """With several processes: SIGKILL everything, the supervisor alone, or one worker
    (then, once it is restarted or not, everything)."""
    assert runner.process is not None
    workers = children(runner.process.pid)
    how = rng.choice(["all", "supervisor", "worker"])
    report[how] = int(report.get(how, 0)) + 1  # type: ignore[call-overload]
    if how == "worker" and workers:
        sigkill(rng.choice(workers))
        time.sleep(rng.uniform(0.2, 2.0))
        workers = children(runner.process.pid)
    if how != "supervisor":
        for pid in workers:
            sigkill(pid)
    runner.kill()


@pytest.mark.parametrize("processes", [1, 2])
def test_fifty_random_kill_9s_lose_and_double_nothing(
    aws: Aws, fake_es: FakeEs, tmp_path: Path, processes: int
) -> None:
    """kill -9 loop (I1, I2, I3, I5, I6 dead letters): random SIGKILLs during startup,
    reads, bulk requests and commits; the final state is exactly the oracle's."""
    kills = KILLS if processes == 1 else KILLS_2
    rng = random.Random(SEED)
    corpus = generate(
        SEED,
        objects=60,
        records=(100, 2500),
        gzip_ratio=0.5,
        bad_line_ratio=0.01,
        empty=True,
        pad=(0, 40),
    )
    queue = aws.queue(VisibilityTimeout=3)
    bucket = aws.bucket()
    upload(aws, bucket, corpus)
    pending = list(corpus.objects)
    rng.shuffle(pending)
    waves = [pending[i :: kills // 2] for i in range(kills // 2)]  # objects to notify per kill
    # A slow cluster keeps work in flight long enough for kills to land in its middle.
    fake_es.latency = 0.1
    state_dir = tmp_path / "state"
    config = daemon_config(
        state_dir,
        [queue],
        fake_es.url,
        object_workers=3,
        processes=processes,
        es={"bulk_max_size": 100},
    )
    runner = S3lbProcess(tmp_path, config)
    report: dict[str, object] = {"kills": 0, "killed_before_ready": 0, "resumed_objects": 0}
    started = time.monotonic()
    with runner:
        for n in range(kills):
            if n < len(waves):
                objects, i = waves[n], 0
                while i < len(objects):
                    size = rng.randint(1, 3)  # multi-object messages
                    notify(aws, queue, objects[i : i + size], per_message=size)
                    i += size
            runner.start()
            time.sleep(rng.uniform(0.3, 2.5))
            ready = "s3lb is running" in runner.log
            assert runner.alive(), runner.log
            if processes == 1:
                runner.kill()
            else:
                kill_some(runner, rng, report)
            report["kills"] = int(report["kills"]) + 1  # type: ignore[call-overload]
            report["killed_before_ready"] = int(report["killed_before_ready"]) + (not ready)  # type: ignore[call-overload]
            check_watermarks(state_dir, corpus, fake_es)

        expected = corpus.expected_ids()
        runner.start(wait=True)
        wait_until(
            lambda: {i for _, i in fake_es.docs} >= expected and aws.counts(queue) == (0, 0),
            180,
            "the final run to drain the queue",
        )
        assert runner.terminate() == 0, runner.log

    docs = fake_es.docs
    ids = [doc_id for _, doc_id in docs]
    missing, extra = expected - set(ids), set(ids) - expected
    bodies = corpus.expected_docs()
    report.update(
        events=len(expected),
        indexed=len(set(ids)),
        missing=len(missing),
        extra=len(extra),
        doubled=len(ids) - len(set(ids)),
        duplicates_absorbed_409=fake_es.item_statuses[409],
        resumed_objects=runner.logs.count("resuming object from its checkpoint"),
        objects=len(corpus.objects),
        seconds=round(time.monotonic() - started),
        seed=SEED,
        processes=processes,
    )
    print("kill -9 loop report:", json.dumps(report))
    (tmp_path / "kill-loop-report.json").write_text(json.dumps(report))
    assert not missing, f"I1: {len(missing)} ids missing"
    assert not extra, f"I2: {len(extra)} unexpected ids"
    assert len(ids) == len(set(ids)), "I2: an id in two indexes"
    assert all(body == bodies[doc_id] for (_, doc_id), body in docs.items()), "I3"
    unparsed = {
        (e["key"], e["position"])
        for e in dead_letters(state_dir)
        if e["kind"] in ("parse_failed", "oversize")
    }
    assert unparsed == {(o.key, p) for o in corpus.objects for p in o.failed_positions()}
    assert "checkpoint store was corrupt" not in runner.logs
    check_watermarks(state_dir, corpus, fake_es)
    # S: the kills proved something only if they hit startups and half-done objects.
    assert report["killed_before_ready"] and report["resumed_objects"], report
    assert report["duplicates_absorbed_409"], report
