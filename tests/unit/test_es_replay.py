"""``s3lb replay-dead-letter`` on the fake cluster: what got in is removed, what did not
is kept, nothing is sent twice, and a running daemon's dead-letter writes are never lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from s3lb.cli.replay import ReplayBusy, _replay_lock, claim_files, replay
from s3lb.config import ElasticsearchOutput, loads
from s3lb.deadletter import DeadLetter
from s3lb.model import ObjectRef
from s3lb.telemetry import Telemetry
from tests.fakes.fake_es import FakeEs
from tests.unit.test_es_sink import REF, make_items, make_sink


def output(**settings: object) -> ElasticsearchOutput:
    config, _ = loads(
        "output.elasticsearch: " + json.dumps({"hosts": ["http://es.invalid:9200"], **settings})
    )
    assert config.output.elasticsearch is not None
    return config.output.elasticsearch


def entries(directory: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted(directory.iterdir())
        if path.name.startswith("dead-letter-")
        for line in path.read_text().splitlines()
    ]


async def reject_some(fake: FakeEs, state: Path, n: int, bad: set[int]) -> list[str]:
    """Ship ``n`` documents; those at positions ``bad`` are refused (dead-lettered)."""
    sink, _ = make_sink(fake, state)
    sink.dead_letter = DeadLetter(state / "dead-letter")
    _, items = make_items(n)
    fake.item_plan = {items[p - 1].doc_id: 400 for p in bad}
    await sink.deliver(items)
    sink.dead_letter.write("parse_failed", "alb: expected 18 fields", REF, 99, 1234, raw="junk")
    sink.dead_letter.close()
    fake.item_plan = None
    return [items[p - 1].doc_id for p in sorted(bad)]


async def test_after_the_fix_rejected_documents_are_indexed_once_and_removed(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    rejected = await reject_some(fake, tmp_path, 6, {2, 5})
    assert len(fake.docs) == 4
    directory = tmp_path / "dead-letter"

    report = await replay(output(), tmp_path, Telemetry(), 60, fake.transport())
    assert report.counts == {"indexed": 2} and report.complete
    assert report.not_replayable == {"parse_failed": 1}
    assert {doc_id for _, doc_id in fake.docs} >= set(rejected) and len(fake.docs) == 6
    # Only the unparsable line is left, in a kept file; nothing is being replayed.
    (left,) = entries(directory)
    assert left["kind"] == "parse_failed" and left["raw"] == "junk"
    assert not list(directory.glob("*.replaying")) and not list(directory.glob("*.tmp"))

    again = await replay(output(), tmp_path, Telemetry(), 60, fake.transport())
    assert sum(again.counts.values()) == 0 and again.not_replayable == {"parse_failed": 1}
    assert len(entries(directory)) == 1 and len(fake.docs) == 6


async def test_a_document_already_there_counts_as_in_and_one_rejected_again_is_kept_anew(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    first, second = await reject_some(fake, tmp_path, 3, {1, 3})
    fake.put_doc("logs", first, {"n": 1})  # got in some other way meanwhile
    fake.item_plan = {second: 400}  # still refused
    report = await replay(output(), tmp_path, Telemetry(), 60, fake.transport())
    assert report.counts == {"duplicate": 1, "rejected": 1} and not report.complete
    kept = entries(tmp_path / "dead-letter")
    assert sorted(str(e["kind"]) for e in kept) == ["parse_failed", "rejected"]
    assert next(e for e in kept if e["kind"] == "rejected")["_id"] == second
    assert fake.item_statuses[201] == 1  # the good original only: nothing created twice


async def test_what_the_cluster_cannot_settle_before_the_timeout_is_kept(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeEs(clock=trio.current_time)
    rejected = await reject_some(fake, tmp_path, 4, {1, 2, 3})
    before = sorted(json.dumps(e, sort_keys=True) for e in entries(tmp_path / "dead-letter"))
    fake.down = "503"
    report = await replay(output(), tmp_path, Telemetry(), 120, fake.transport())
    assert report.counts == {"unsettled": 3}
    after = sorted(json.dumps(e, sort_keys=True) for e in entries(tmp_path / "dead-letter"))
    assert after == before  # every entry is still there, once
    fake.down = None
    report = await replay(output(), tmp_path, Telemetry(), 120, fake.transport())
    assert report.counts == {"indexed": 3}
    assert {doc_id for _, doc_id in fake.docs} >= set(rejected)


def test_a_running_daemon_never_writes_into_a_claimed_file(tmp_path: Path) -> None:
    directory = tmp_path / "dead-letter"
    daemon = DeadLetter(directory)
    ref = ObjectRef("b", "k", "e")
    daemon.write("parse_failed", "before", ref, 1, raw="a")  # the daemon's file is open
    (claimed,) = claim_files(directory)
    daemon.write("parse_failed", "after", ref, 2, raw="b")
    daemon.close()
    assert [json.loads(line)["reason"] for line in claimed.read_text().splitlines()] == ["before"]
    (fresh,) = directory.glob("dead-letter-*.ndjson")
    assert [json.loads(line)["reason"] for line in fresh.read_text().splitlines()] == ["after"]


async def test_a_second_replay_at_the_same_time_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dead-letter").mkdir()
    with _replay_lock(tmp_path / "dead-letter"), pytest.raises(ReplayBusy):
        await replay(output(), tmp_path, Telemetry(), 1, FakeEs().transport())
