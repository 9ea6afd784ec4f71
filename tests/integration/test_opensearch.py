"""Against a real OpenSearch 2.19 node: ``s3lb setup``, ``s3lb run`` over moto S3/SQS,
and ``s3lb replay-dead-letter``.

- every format's documents are indexed under the templates' mappings (``ip``, numbers,
  dates), and an IP range query on ``client_ip`` finds what it should;
- the same objects sent again (by a daemon with a fresh state) add zero documents;
- a mapping conflict ends in the dead-letter store while the SQS message is deleted, and
  a replay after the mapping is fixed indexes each document once;
- data stream mode writes ``create`` actions into a data stream.
"""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from s3lb.acks import BulkItem, ObjectTracker
from s3lb.model import ObjectRef, document_id
from s3lb.pipeline.parsing import ObjectParser
from s3lb.sinks.elasticsearch.bulk import build_body, classify, delete_body
from s3lb.sinks.elasticsearch.sink import BULK_PATH
from s3lb.sinks.elasticsearch.templates import FORMAT_FIELDS
from tests.conftest import Aws
from tests.paths import SEED as SEED_DIR
from tests.support.configs import s3lb_config, sqs_input
from tests.support.daemon import S3lbProcess
from tests.support.helpers import ALB, event_record, s3lb_cli, wait_until
from tests.unit.test_es_templates import SAMPLES, leaves

pytestmark = pytest.mark.slow

PLAIN = {"elb", "s3access"}  # AWS writes these uncompressed


@pytest.fixture
def cluster(opensearch_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=opensearch_url, timeout=30) as client:
        yield client


def prefix() -> str:
    """Index names of one test: the node is shared by the whole run."""
    return f"t{uuid.uuid4().hex[:10]}"


def config(
    inputs: list[tuple[str, str]], url: str, index: str, state: str = "./state", **output: Any
) -> str:
    """A daemon configuration: one input per ``(queue url, log format)``."""
    return s3lb_config(
        state_dir=state,
        inputs=[
            sqs_input(
                [queue],
                fmt,
                fields={"log_type": fmt},
                key_regex_fields="^(?P<environment>[^/]+)/",
            )
            for queue, fmt in inputs
        ],
        es_url=url,
        es={"index": index, **output},
    )


def expected_documents(fmt: str, path: Path, ref: ObjectRef) -> dict[str, dict[str, Any]]:
    """``_id`` → document, as the daemon makes them from ``path`` stored under ``ref``."""
    parser = ObjectParser(fmt, ref.key)
    cutter = parser.new_cutter()
    out = {}
    for record in [*cutter.feed(path.read_bytes()), *cutter.close()]:
        doc = parser.parse(record)
        if isinstance(doc, dict):
            out[document_id(ref, record.position)] = doc
    return out


def wait_for(run: S3lbProcess, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """:func:`wait_until` at a gentler pace (each check is several requests to moto and
    the node), with the daemon's log when it times out."""

    def paced() -> bool:
        time.sleep(0.25)
        return predicate()

    try:
        wait_until(paced, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- daemon log ---\n{run.log[-6000:]}") from None


def count(cluster: httpx.Client, index: str) -> int:
    """Documents in ``index`` (0 while it does not exist)."""
    if cluster.post(f"/{index}/_refresh").status_code == 404:
        return 0
    response = cluster.get(f"/{index}/_count")
    return int(response.json()["count"]) if response.status_code == 200 else 0


def search(cluster: httpx.Client, index: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    """Every hit of ``query`` (after a refresh), with its ``_version``."""
    cluster.post(f"/{index}/_refresh").raise_for_status()
    response = cluster.post(
        f"/{index}/_search", json={"query": query, "size": 10000, "version": True}
    )
    response.raise_for_status()
    return list(response.json()["hits"]["hits"])


def field_type(mappings: dict[str, Any], path: str) -> Any:
    node: Any = {"properties": mappings}
    for part in path.split("."):
        node = node["properties"][part]
    return node.get("type", "object") if node.get("enabled", True) else "not indexed"


def test_every_format_is_indexed_with_the_template_mappings_and_a_replay_adds_nothing(
    aws: Aws,
    cluster: httpx.Client,
    opensearch_url: str,
    daemon: Callable[..., S3lbProcess],
    tmp_path: Path,
) -> None:
    name = prefix()
    formats = sorted(fmt for fmt in SAMPLES if fmt in FORMAT_FIELDS)
    inputs, notifications = [], []
    expected: dict[str, dict[str, Any]] = {}
    for fmt in formats:
        queue, bucket = aws.quiet_queue()
        inputs.append((queue, fmt))
        for n, path in enumerate(SAMPLES[fmt]):
            key = f"prod/{fmt}/{n}-{path.name}"
            etag = aws.put(bucket, key, path.read_bytes(), compress=fmt not in PLAIN)
            expected |= expected_documents(fmt, path, ObjectRef(bucket, key, etag))
            notifications.append((queue, event_record(bucket, key, etag, key)))
    # One index per format: unknown fields of one format (the samples have some) cannot
    # clash with another's. (No date part: the samples span many days, and creating an
    # index per day costs the single node more than the test is worth.)
    index = f"{name}-%{{[fields.log_type]}}"
    text = config(inputs, opensearch_url, index, compression_level=1)
    (tmp_path / "s3lb.yml").write_text(text)

    for _ in range(2):  # idempotent: the second run changes nothing and succeeds
        result = s3lb_cli("setup", "-c", "s3lb.yml", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    template = cluster.get(f"/_index_template/s3lb-{name}").json()["index_templates"][0]
    assert len(template["index_template"]["composed_of"]) == len(formats) + 1

    run = daemon(text)
    wait_for(run, lambda: count(cluster, f"{name}-*") >= len(expected), 60, "every document")
    wait_for(run, lambda: all(aws.counts(q) == (0, 0) for q, _ in inputs), 30, "empty queues")
    assert run.stop() == 0, run.log
    hits = search(cluster, f"{name}-*", {"match_all": {}})
    assert {hit["_id"] for hit in hits} == set(expected) and len(hits) == len(expected)
    for hit in hits:
        assert hit["_index"] == f"{name}-{hit['_source']['fields']['log_type']}"

    mappings = cluster.get(f"/{name}-*/_mapping").json()
    for mapping in mappings.values():
        props = mapping["mappings"]["properties"]
        for path, kind in {
            "@timestamp": "date",
            "client_ip": "ip",
            "c_ip": "ip",
            "srcaddr": "ip",
            "httpRequest.clientIp": "ip",
            "client_port": "integer",
            "received_bytes": "long",
            "request_processing_time": "double",
            "request_url": "keyword",
            "environment": "keyword",
            "requestParameters": "not indexed",
        }.items():
            if path.split(".")[0] in props:
                assert field_type(props, path) == kind, (path, mapping)

    # An IP range query finds exactly the documents whose client_ip is in the range.
    network = ipaddress.ip_network("192.168.0.0/16")
    inside = {
        doc_id
        for doc_id, doc in expected.items()
        if "client_ip" in doc and ipaddress.ip_address(doc["client_ip"]) in network
    }
    assert inside
    found = search(cluster, f"{name}-*", {"term": {"client_ip": str(network)}})
    assert {hit["_id"] for hit in found} == inside
    assert [leaf for leaf in leaves(found[0]["_source"]) if leaf[0] == "environment"] == [
        ("environment", "prod")
    ]

    # The same notifications to a daemon with a fresh state: every document is sent
    # again, answered 409, and left as it was (version 1). First let the long polls the
    # stopped daemon left on the server (wait_time 1s) run out: one would take a message
    # and hide it for the visibility timeout.
    time.sleep(1.5)
    for queue, body in notifications:
        aws.send(queue, {"Records": [body]})
    rerun = daemon(config(inputs, opensearch_url, index, "./state-b"))
    wait_for(rerun, lambda: all(aws.counts(q) == (0, 0) for q, _ in inputs), 60, "queues")
    assert rerun.stop() == 0, rerun.log
    again = search(cluster, f"{name}-*", {"match_all": {}})
    assert len(again) == len(expected)
    assert {hit["_version"] for hit in again} == {1}
    assert f"events_duplicate={len(expected)}" in rerun.log


@pytest.mark.parametrize("store", ["files", "index"])
def test_a_mapping_conflict_is_dead_lettered_the_message_deleted_and_replay_indexes_it_once(
    aws: Aws,
    cluster: httpx.Client,
    opensearch_url: str,
    daemon: Callable[..., S3lbProcess],
    tmp_path: Path,
    store: str,
) -> None:
    name = prefix()
    index = f"{name}-2016.08.10"
    dead_index = f"{name}-dead-letter"
    # A strict mapping without ssl_cipher: the sample's TLS lines are refused.
    fields = {k: v for k, v in FORMAT_FIELDS["alb"].items() if k != "ssl_cipher"}
    properties = {
        **fields,
        "@timestamp": {"type": "date"},
        "environment": {"type": "keyword"},
        "fields": {"type": "object", "dynamic": True},
    }
    response = cluster.put(
        f"/{index}", json={"mappings": {"dynamic": "strict", "properties": properties}}
    )
    assert response.status_code == 200, response.text

    queue, bucket = aws.quiet_queue()
    output = {"dead_letter_index": dead_index} if store == "index" else {}
    text = config([(queue, "alb")], opensearch_url, f"{name}-%{{+yyyy.MM.dd}}", **output)
    (tmp_path / "s3lb.yml").write_text(text)
    run = daemon(text)
    etag = aws.put(bucket, "prod/alb.log.gz", ALB, compress=True)
    ref = ObjectRef(bucket, "prod/alb.log.gz", etag)
    docs = expected_documents("alb", SEED_DIR / "alb.log", ref)
    refused = {doc_id for doc_id, doc in docs.items() if "ssl_cipher" in doc}
    assert 0 < len(refused) < len(docs)

    wait_for(run, lambda: aws.counts(queue) == (0, 0), 30, "the message to be deleted")
    assert count(cluster, index) == len(docs) - len(refused)
    if store == "files":
        entries = [
            json.loads(line)
            for path in (tmp_path / "state" / "dead-letter").glob("*.ndjson")
            for line in path.read_text().splitlines()
        ]
        located = [(e["bucket"], e["key"], e["position"], e["_id"]) for e in entries]
    else:
        entries = [hit["_source"] for hit in search(cluster, dead_index, {"match_all": {}})]
        located = [(e["bucket"], e["key"], e["position"], e["id"]) for e in entries]
    assert {(b, k) for b, k, _, _ in located} == {(bucket, "prod/alb.log.gz")}
    assert {doc_id for _, _, _, doc_id in located} == refused
    assert all(document_id(ref, n) == doc_id for _, _, n, doc_id in located)
    assert all("strict_dynamic_mapping_exception" in e["reason"] for e in entries)

    # Fix the mapping, then replay while the daemon still runs: each document once.
    cluster.put(f"/{index}/_mapping", json={"properties": {"ssl_cipher": {"type": "keyword"}}})
    result = s3lb_cli("replay-dead-letter", "-c", "s3lb.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"replayed {len(refused)} documents: {len(refused)} indexed" in result.stdout
    hits = search(cluster, index, {"match_all": {}})
    assert {hit["_id"] for hit in hits} == set(docs) and len(hits) == len(docs)
    if store == "index":
        assert count(cluster, dead_index) == 0
    else:
        left = list((tmp_path / "state" / "dead-letter").glob("dead-letter-*"))
        assert left == []

    result = s3lb_cli("replay-dead-letter", "-c", "s3lb.yml", cwd=tmp_path)
    assert result.returncode == 0 and "replayed 0 documents" in result.stdout
    assert count(cluster, index) == len(docs)
    assert run.stop() == 0, run.log


def test_data_stream_mode_creates_into_a_data_stream_with_the_template(
    aws: Aws,
    cluster: httpx.Client,
    opensearch_url: str,
    daemon: Callable[..., S3lbProcess],
    tmp_path: Path,
) -> None:
    stream = f"logs-{prefix()}-alb"
    queue = aws.queue()
    bucket = aws.bucket(queue)
    text = config([(queue, "alb")], opensearch_url, stream, data_stream=True)
    (tmp_path / "s3lb.yml").write_text(text)
    result = s3lb_cli("setup", "-c", "s3lb.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = daemon(text)
    aws.put(bucket, "prod/alb.log", ALB)
    wait_for(run, lambda: count(cluster, stream) == 5, 30, "the data stream's documents")
    assert run.stop() == 0, run.log
    (info,) = cluster.get(f"/_data_stream/{stream}").json()["data_streams"]
    assert info["template"] == f"s3lb-{stream}"
    backing = info["indices"][0]["index_name"]
    props = cluster.get(f"/{backing}/_mapping").json()[backing]["mappings"]["properties"]
    assert props["client_ip"]["type"] == "ip"


@pytest.mark.parametrize("path", ["/_bulk", BULK_PATH], ids=["whole", "filtered"])
def test_the_bulk_protocol_reads_the_nodes_own_answers(cluster: httpx.Client, path: str) -> None:
    """The sans-IO protocol against real answers, whole and as the sink asks for them
    (``filter_path``: each item's status and error only, uncompressed): created,
    already there (409), refused by the mapping; the fast path holds only for an
    answer of 2xx items."""
    index = prefix()
    mapping = {"mappings": {"dynamic": "strict", "properties": {"n": {"type": "integer"}}}}
    assert cluster.put(f"/{index}", json=mapping).status_code == 200
    tracker = ObjectTracker(ObjectRef("b", "k", "e"), lambda _t: None)
    good = [BulkItem(index, f"id{n}", b'{"n":%d}' % n, tracker, n) for n in range(3)]
    bad = BulkItem(index, "bad", b'{"unknown":1}', tracker, 9)
    headers = {"Content-Type": "application/x-ndjson", "Accept-Encoding": "identity"}

    def send(body: bytes) -> bytes:
        response = cluster.post(path, content=body, headers=headers)
        assert response.status_code == 200
        assert "content-encoding" not in response.headers
        if path == BULK_PATH:
            assert b'"_id"' not in response.content and b'"status"' in response.content
        return response.content

    first = send(build_body(good))
    assert b'"errors":false' in first
    assert [o for _, o, _ in classify(first, good)] == ["indexed"] * 3
    again = classify(send(build_body([*good[:2], bad])), [*good[:2], bad])
    assert [o for _, o, _ in again] == ["duplicate", "duplicate", "rejected"]
    assert again[2][2].startswith("HTTP 400 strict_dynamic_mapping_exception")
    deleted = classify(send(delete_body(index, ["id0", "missing"])), ["id0", "missing"])
    assert [o for _, o, _ in deleted] == ["indexed", "rejected"]  # 200, then 404
    cluster.post(f"/{index}/_refresh")
    assert count(cluster, index) == 2
    cluster.delete(f"/{index}")
