"""``s3lb replay-dead-letter`` against the real OpenSearch node: what got in is removed,
what did not is kept, nothing is indexed twice, and a running daemon's dead-letter
writes are never lost. An outage (the one fault) comes from a transport answering 503.

Rejections are real: the test index maps ``dynamic: strict``, so a document with a
field it does not know is refused (400), until the mapping gains that field.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from s3lb.acks import BulkItem, ObjectTracker
from s3lb.config import ElasticsearchOutput, loads
from s3lb.deadletter import DeadLetter, entry
from s3lb.model import ObjectRef, document_id
from s3lb.sinks.elasticsearch.replay import ReplayBusy, claim_files, replay, replay_lock
from s3lb.sinks.elasticsearch.sink import ElasticsearchSink
from s3lb.telemetry import Telemetry

REF = ObjectRef("bucket", "key.log", "etag")


def output(url: str, **settings: object) -> ElasticsearchOutput:
    config, _ = loads("output.elasticsearch: " + json.dumps({"hosts": [url], **settings}))
    assert config.output.elasticsearch is not None
    return config.output.elasticsearch


def entries(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(directory.iterdir())
        if path.name.startswith("dead-letter-")
        for line in path.read_text().splitlines()
    ]


@pytest.fixture
async def node(opensearch_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=opensearch_url, timeout=30) as client:
        yield client


async def strict_index(node: httpx.AsyncClient) -> str:
    """A fresh index that knows field ``n`` only: anything else is refused."""
    index = f"t{uuid.uuid4().hex[:10]}"
    mappings = {"dynamic": "strict", "properties": {"n": {"type": "integer"}}}
    response = await node.put(f"/{index}", json={"mappings": mappings})
    assert response.status_code == 200, response.text
    return index


async def allow(node: httpx.AsyncClient, index: str, field: str) -> None:
    """The fix: the mapping learns ``field``."""
    body = {"properties": {field: {"type": "keyword"}}}
    assert (await node.put(f"/{index}/_mapping", json=body)).status_code == 200


async def stored(node: httpx.AsyncClient, index: str) -> dict[str, int]:
    """``_id`` → ``_version`` of every document of ``index``."""
    await node.post(f"/{index}/_refresh")
    response = await node.post(
        f"/{index}/_search", json={"size": 1000, "version": True, "query": {"match_all": {}}}
    )
    return {hit["_id"]: hit["_version"] for hit in response.json()["hits"]["hits"]}


async def ship(
    config: ElasticsearchOutput, state: Path, index: str, n: int, bad: dict[int, str]
) -> list[str]:
    """Ship ``n`` documents to ``index``; those at positions ``bad`` carry an unknown
    field (the value) and are dead-lettered. Returns every ``_id``."""
    tracker = ObjectTracker(REF, lambda _t: None)
    items = []
    for p in range(1, n + 1):
        doc = {"n": p, **({bad[p]: "x"} if p in bad else {})}
        items.append(BulkItem(index, document_id(REF, p), json.dumps(doc).encode(), tracker, p))
    tracker.add(n)
    dead_letter = DeadLetter(state / "dead-letter")
    sink = ElasticsearchSink(config, Telemetry(), dead_letter)
    await sink.deliver(items)
    await sink.aclose()
    await dead_letter.write([entry("parse_failed", "alb: 18 fields", REF, 99, 1234, raw="junk")])
    dead_letter.close()
    return [item.doc_id for item in items]


async def test_after_the_fix_rejected_documents_are_indexed_once_and_removed(
    opensearch_url: str, node: httpx.AsyncClient, tmp_path: Path
) -> None:
    index = await strict_index(node)
    ids = await ship(output(opensearch_url), tmp_path, index, 6, {2: "x", 5: "x"})
    assert set(await stored(node, index)) == {ids[i] for i in (0, 2, 3, 5)}
    await allow(node, index, "x")

    report = await replay(output(opensearch_url), tmp_path, Telemetry(), 60)
    assert report.counts == {"indexed": 2} and report.complete
    assert report.not_replayable == {"parse_failed": 1}
    assert await stored(node, index) == dict.fromkeys(ids, 1)  # each document once
    directory = tmp_path / "dead-letter"
    (left,) = entries(directory)
    assert left["kind"] == "parse_failed" and left["raw"] == "junk"
    assert not list(directory.glob("*.replaying")) and not list(directory.glob("*.tmp"))

    again = await replay(output(opensearch_url), tmp_path, Telemetry(), 60)
    assert sum(again.counts.values()) == 0 and again.not_replayable == {"parse_failed": 1}
    assert len(entries(directory)) == 1
    assert await stored(node, index) == dict.fromkeys(ids, 1)


async def test_a_document_already_there_counts_as_in_and_one_rejected_again_is_kept_anew(
    opensearch_url: str, node: httpx.AsyncClient, tmp_path: Path
) -> None:
    index = await strict_index(node)
    ids = await ship(output(opensearch_url), tmp_path, index, 3, {1: "x", 3: "y"})
    await allow(node, index, "x")  # y stays refused
    # The first one got in some other way meanwhile.
    response = await node.put(f"/{index}/_create/{ids[0]}", json={"n": 1, "x": "other"})
    assert response.status_code == 201

    report = await replay(output(opensearch_url), tmp_path, Telemetry(), 60)
    assert report.counts == {"duplicate": 1, "rejected": 1} and not report.complete
    kept = entries(tmp_path / "dead-letter")
    assert sorted(str(e["kind"]) for e in kept) == ["parse_failed", "rejected"]
    again = next(e for e in kept if e["kind"] == "rejected")
    assert again["_id"] == ids[2] and "strict_dynamic_mapping_exception" in again["reason"]
    assert await stored(node, index) == {ids[0]: 1, ids[1]: 1}  # nothing written twice


async def test_what_the_cluster_cannot_settle_before_the_timeout_is_kept(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    store = DeadLetter(tmp_path / "dead-letter")
    store.append(
        [
            entry("rejected", "HTTP 400", REF, p, _index="logs", _id=f"id{p}", document='{"n":1}')
            for p in (1, 2, 3)
        ]
    )
    store.close()
    before = sorted(json.dumps(e, sort_keys=True) for e in entries(tmp_path / "dead-letter"))

    def unavailable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": "busy"})

    config = output("http://es.invalid:9200")
    report = await replay(config, tmp_path, Telemetry(), 120, httpx.MockTransport(unavailable))
    assert report.counts == {"unsettled": 3} and not report.complete
    after = sorted(json.dumps(e, sort_keys=True) for e in entries(tmp_path / "dead-letter"))
    assert after == before  # every entry is still there, once


async def test_entries_of_the_dead_letter_index_are_replayed_and_then_deleted(
    opensearch_url: str, node: httpx.AsyncClient, tmp_path: Path
) -> None:
    index = await strict_index(node)
    dead_index = index + "-dead"
    config = output(opensearch_url, dead_letter_index=dead_index)
    ids = await ship(config, tmp_path, index, 4, {2: "x", 4: "x"})
    kept = await stored(node, dead_index)
    assert len(kept) == 2
    assert [e["kind"] for e in entries(tmp_path / "dead-letter")] == ["parse_failed"]
    await allow(node, index, "x")

    report = await replay(config, tmp_path, Telemetry(), 60)
    assert report.counts == {"indexed": 2} and report.complete
    assert await stored(node, index) == dict.fromkeys(ids, 1)
    assert await stored(node, dead_index) == {}  # the entries that got in are gone


def test_a_running_daemon_never_writes_into_a_claimed_file(tmp_path: Path) -> None:
    directory = tmp_path / "dead-letter"
    daemon = DeadLetter(directory)
    ref = ObjectRef("b", "k", "e")
    daemon.append([entry("parse_failed", "before", ref, 1, raw="a")])  # the file is open
    (claimed,) = claim_files(directory)
    daemon.append([entry("parse_failed", "after", ref, 2, raw="b")])
    daemon.close()
    assert [json.loads(line)["reason"] for line in claimed.read_text().splitlines()] == ["before"]
    (fresh,) = directory.glob("dead-letter-*.ndjson")
    assert [json.loads(line)["reason"] for line in fresh.read_text().splitlines()] == ["after"]


async def test_a_second_replay_at_the_same_time_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dead-letter").mkdir()
    with replay_lock(tmp_path / "dead-letter"), pytest.raises(ReplayBusy):
        await replay(output("http://es.invalid:9200"), tmp_path, Telemetry(), 1)
