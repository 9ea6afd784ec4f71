"""FakeEs answers like a cluster, and each fault knob does what it promises."""

from __future__ import annotations

import gzip
import json
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio

from tests.fakes import es_frontends
from tests.fakes.fake_es import FakeEs, RequestRecord

NDJSON = {"content-type": "application/x-ndjson"}


@pytest.fixture
def es() -> Iterator[FakeEs]:
    with FakeEs() as fake:
        yield fake
        assert fake.internal_errors == []


@pytest.fixture
def client(es: FakeEs) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=es.url, timeout=5) as c:
        yield c


def ndjson(*items: tuple[str, str, dict[str, Any]], index: str | None = "logs") -> bytes:
    """Bulk body of ``(op, _id, source)`` items."""
    lines: list[str] = []
    for op, doc_id, source in items:
        meta: dict[str, str] = {"_id": doc_id}
        if index is not None:
            meta["_index"] = index
        lines += [json.dumps({op: meta}), json.dumps(source)]
    return ("\n".join(lines) + "\n").encode()


def creates(*ids: str) -> bytes:
    return ndjson(*(("create", i, {"n": i}) for i in ids))


def statuses(response: httpx.Response) -> list[int]:
    return [next(iter(item.values()))["status"] for item in response.json()["items"]]


# -- API surface -----------------------------------------------------------------------------


def test_root_reports_elasticsearch_8_by_default(client: httpx.Client) -> None:
    """GET / is the ES 8 info document, with the product header clients check."""
    r = client.get("/")
    assert r.status_code == 200
    assert r.json()["version"]["number"].startswith("8.")
    assert "distribution" not in r.json()["version"]
    assert r.headers["x-elastic-product"] == "Elasticsearch"
    head = client.head("/")
    assert head.status_code == 200
    assert head.content == b""


def test_root_reports_opensearch_2_when_asked() -> None:
    """The flavor knob switches GET / to an OpenSearch 2.x document."""
    with FakeEs(flavor="opensearch") as es, httpx.Client(base_url=es.url) as c:
        info = c.get("/").json()
        assert info["version"]["distribution"] == "opensearch"
        assert info["version"]["number"].startswith("2.")
        assert "x-elastic-product" not in c.get("/").headers


def test_bulk_create_stores_docs_and_answers_in_es_shape(es: FakeEs, client: httpx.Client) -> None:
    """Two creates: 201 each, stored by (index, _id), request and acks recorded."""
    body = creates("a", "b")
    before = time.monotonic()
    r = client.post("/_bulk", content=body, headers=NDJSON)
    after = time.monotonic()
    assert r.status_code == 200
    doc = r.json()
    assert doc["errors"] is False
    assert isinstance(doc["took"], int)
    item = doc["items"][0]["create"]
    assert item["_index"] == "logs"
    assert item["_id"] == "a"
    assert item["status"] == 201
    assert item["result"] == "created"
    assert statuses(r) == [201, 201]
    assert es.docs == {("logs", "a"): {"n": "a"}, ("logs", "b"): {"n": "b"}}
    assert es.requests == [RequestRecord("POST", "/_bulk", 2, len(body))]
    assert set(es.first_ack) == {("logs", "a"), ("logs", "b")}
    assert all(before <= t <= after for t in es.first_ack.values())
    assert es.item_statuses == {201: 2}


def test_create_on_existing_id_is_a_409_and_index_overwrites(
    es: FakeEs, client: httpx.Client
) -> None:
    """create never overwrites (409 version conflict); index replaces with 200."""
    client.post("/_bulk", content=creates("a"), headers=NDJSON)
    first_ack = es.first_ack[("logs", "a")]
    r = client.post("/_bulk", content=creates("a"), headers=NDJSON)
    assert r.json()["errors"] is True
    item = r.json()["items"][0]["create"]
    assert item["status"] == 409
    assert item["error"]["type"] == "version_conflict_engine_exception"
    assert es.first_ack[("logs", "a")] == first_ack
    r = client.post("/_bulk", content=ndjson(("index", "a", {"n": 2})), headers=NDJSON)
    item = r.json()["items"][0]["index"]
    assert (item["status"], item["result"], item["_version"]) == (200, "updated", 2)
    assert es.docs[("logs", "a")] == {"n": 2}


def test_index_in_path_is_the_default_and_action_index_wins(
    es: FakeEs, client: httpx.Client
) -> None:
    """POST /{index}/_bulk fills in a missing _index; an explicit _index overrides it."""
    body = ndjson(("create", "x", {})) + ndjson(("create", "y", {}), index=None)
    r = client.post("/other/_bulk", content=body, headers=NDJSON)
    assert statuses(r) == [201, 201]
    assert set(es.docs) == {("logs", "x"), ("other", "y")}
    assert es.requests[-1] == RequestRecord("POST", "/other/_bulk", 2, len(body))


def test_gzip_and_chunked_bodies_are_accepted(es: FakeEs, client: httpx.Client) -> None:
    """Content-Encoding: gzip is decoded (nbytes counts decoded bytes); chunked works."""
    body = creates("g1", "g2")
    r = client.post(
        "/_bulk",
        content=gzip.compress(body),
        headers={**NDJSON, "content-encoding": "gzip"},
    )
    assert statuses(r) == [201, 201]
    assert es.requests[-1].nbytes == len(body)
    r = client.post("/_bulk", content=iter([creates("c1"), creates("c2")]), headers=NDJSON)
    assert statuses(r) == [201, 201]
    assert {"g1", "g2", "c1", "c2"} == {i for _, i in es.docs}


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (creates("a")[:-1], NDJSON, 400),  # not newline-terminated
        (b"", NDJSON, 400),
        (b'{"delete":{"_index":"logs","_id":"a"}}\n', NDJSON, 400),
        (b"not json\n{}\n", NDJSON, 400),
        (b'{"create":{"_id":"a"}}\n{}\n', NDJSON, 400),  # no index anywhere
        (creates("a"), {"content-type": "text/plain"}, 406),
        (b"\x1f\x8b garbage", {**NDJSON, "content-encoding": "gzip"}, 400),
    ],
)
def test_malformed_bulk_requests_are_rejected_whole(
    es: FakeEs, client: httpx.Client, body: bytes, headers: dict[str, str], status: int
) -> None:
    """Request-level errors answer with an error status and store nothing."""
    r = client.post("/_bulk", content=body, headers=headers)
    assert r.status_code == status
    assert es.docs == {}


def test_unparsable_source_is_an_item_level_400(es: FakeEs, client: httpx.Client) -> None:
    """A bad document line fails only its own item, as mapper_parsing_exception."""
    body = b'{"create":{"_index":"logs","_id":"bad"}}\nnot json\n' + creates("ok")
    r = client.post("/_bulk", content=body, headers=NDJSON)
    assert statuses(r) == [400, 201]
    assert r.json()["items"][0]["create"]["error"]["type"] == "mapper_parsing_exception"
    assert set(es.docs) == {("logs", "ok")}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_cluster/health"),
        ("PUT", "/_index_template/s3lb"),
        ("GET", "/_index_template/s3lb"),
        ("PUT", "/logs"),
        ("GET", "/logs/_doc/a"),
        ("GET", "/logs/_count"),
        ("POST", "/logs/_search"),
        ("GET", "/logs/_mapping"),
        ("GET", "/_nope"),
    ],
)
def test_the_read_side_is_not_imitated(
    es: FakeEs, client: httpx.Client, method: str, path: str
) -> None:
    """Templates, mappings, documents and counts are the real node's to answer: the fake
    says what a cluster says to an unknown endpoint, and stores nothing."""
    client.post("/_bulk", content=creates("a"), headers=NDJSON)
    r = client.request(method, path, json={})
    assert r.status_code == 400
    assert r.json()["error"] == f"no handler found for uri [{path}] and method [{method}]"
    assert set(es.docs) == {("logs", "a")}


# -- fault knobs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "err_type"),
    [
        ("503", 503, "cluster_block_exception"),
        ("429", 429, "es_rejected_execution_exception"),
        ("401", 401, "security_exception"),
    ],
)
def test_down_answers_every_request_with_its_status_until_cleared(
    es: FakeEs, client: httpx.Client, mode: Any, status: int, err_type: str
) -> None:
    """While down, nothing is applied; clearing the knob restores service live."""
    es.down = mode
    r = client.post("/_bulk", content=creates("a"), headers=NDJSON)
    assert r.status_code == status
    assert r.json()["error"]["type"] == err_type
    assert client.get("/").status_code == status
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Basic")
    assert es.docs == {}
    assert es.first_ack == {}
    assert es.requests[0] == RequestRecord("POST", "/_bulk", 1, len(creates("a")))
    es.down = None
    assert statuses(client.post("/_bulk", content=creates("a"), headers=NDJSON)) == [201]


def test_down_reset_closes_the_connection_without_answering(
    es: FakeEs, client: httpx.Client
) -> None:
    """reset: the client sees a connection error; nothing is applied; recovery is live."""
    es.down = "reset"
    with pytest.raises(httpx.ReadError):
        client.post("/_bulk", content=creates("a"), headers=NDJSON)
    assert es.docs == {}
    assert len(es.requests) == 1
    es.down = None
    assert statuses(client.post("/_bulk", content=creates("a"), headers=NDJSON)) == [201]


def test_unknown_down_mode_is_refused(es: FakeEs) -> None:
    """A typo in a knob fails the test instead of silently doing nothing."""
    with pytest.raises(ValueError):
        es.down = "500"  # type: ignore[assignment]


def test_item_plan_by_id_is_consumed_one_status_per_attempt(
    es: FakeEs, client: httpx.Client
) -> None:
    """{_id: status | [statuses]}: planned items are not applied until the plan runs out."""
    es.item_plan = {"b": 429, "c": [503, 400], "d": 409, "e": 201}
    r = client.post("/_bulk", content=creates("a", "b", "c", "d", "e"), headers=NDJSON)
    assert statuses(r) == [201, 429, 503, 409, 201]
    items = [item["create"] for item in r.json()["items"]]
    assert items[1]["error"]["type"] == "es_rejected_execution_exception"
    assert items[2]["error"]["type"] == "unavailable_shards_exception"
    assert items[3]["error"]["type"] == "version_conflict_engine_exception"
    assert r.json()["errors"] is True
    assert set(es.docs) == {("logs", "a"), ("logs", "e")}
    assert set(es.first_ack) == {("logs", "a"), ("logs", "d"), ("logs", "e")}

    r = client.post("/_bulk", content=creates("b", "c"), headers=NDJSON)
    assert statuses(r) == [201, 400]
    assert r.json()["items"][1]["create"]["error"]["type"] == "mapper_parsing_exception"
    assert es.item_plan == {}
    assert statuses(client.post("/_bulk", content=creates("c"), headers=NDJSON)) == [201]
    assert es.item_statuses == {201: 4, 429: 1, 503: 1, 409: 1, 400: 1}


def test_item_plan_by_position_applies_to_the_next_request(
    es: FakeEs, client: httpx.Client
) -> None:
    """{position: status} hits that item of the next bulk request only."""
    es.item_plan = {1: 429}
    assert statuses(client.post("/_bulk", content=creates("a", "b"), headers=NDJSON)) == [
        201,
        429,
    ]
    assert statuses(client.post("/_bulk", content=creates("c", "d"), headers=NDJSON)) == [
        201,
        201,
    ]


def test_item_plan_callable_is_asked_for_every_item(es: FakeEs, client: httpx.Client) -> None:
    """A callable plan sees (_id, position) and keeps its own state; None applies."""
    seen: list[tuple[str, int]] = []

    def plan(doc_id: str, position: int) -> int | None:
        seen.append((doc_id, position))
        return 400 if doc_id.startswith("bad") else None

    es.item_plan = plan
    r = client.post("/_bulk", content=creates("ok", "bad1"), headers=NDJSON)
    assert statuses(r) == [201, 400]
    assert seen == [("ok", 0), ("bad1", 1)]
    assert statuses(client.post("/_bulk", content=creates("bad1"), headers=NDJSON)) == [400]
    es.item_plan = None
    assert statuses(client.post("/_bulk", content=creates("bad1"), headers=NDJSON)) == [201]


def test_apply_then_drop_applies_and_hangs_up_then_resend_gets_409s(
    es: FakeEs, client: httpx.Client
) -> None:
    """The bulk lands but no answer comes back; a resend is all 409 and acks then."""
    es.apply_then_drop = 1
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/_bulk", content=creates("a", "b"), headers=NDJSON)
    assert set(es.docs) == {("logs", "a"), ("logs", "b")}
    assert es.first_ack == {}
    assert es.apply_then_drop == 0
    assert es.item_statuses == {}
    r = client.post("/_bulk", content=creates("a", "b"), headers=NDJSON)
    assert statuses(r) == [409, 409]
    assert set(es.first_ack) == {("logs", "a"), ("logs", "b")}


def test_apply_then_drop_counts_only_bulk_requests(es: FakeEs, client: httpx.Client) -> None:
    """N drops means the next N bulk requests; other endpoints still answer."""
    es.apply_then_drop = 2
    assert client.get("/").status_code == 200
    for doc_id in ("a", "b"):
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/_bulk", content=creates(doc_id), headers=NDJSON)
    assert statuses(client.post("/_bulk", content=creates("c"), headers=NDJSON)) == [201]


def test_latency_delays_every_request(
    es: FakeEs, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """latency seconds are slept before any answer; none without a latency."""
    slept: list[float] = []
    monkeypatch.setattr(es_frontends, "time", types.SimpleNamespace(sleep=slept.append))
    es.latency = 0.2
    client.get("/")
    client.post("/_bulk", content=creates("a"), headers=NDJSON)
    assert slept == [0.2, 0.2]
    es.latency = 0
    client.get("/")
    assert slept == [0.2, 0.2]


def test_max_content_length_gives_413_on_decoded_size(es: FakeEs, client: httpx.Client) -> None:
    """Bodies over the limit get 413 and are not applied, even when gzip shrinks them."""
    small, big = creates("a"), creates(*(f"id{i}" for i in range(50)))
    es.max_content_length = len(small)
    r = client.post("/_bulk", content=big, headers=NDJSON)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "content_too_long_exception"
    zipped = gzip.compress(big)
    assert len(zipped) < len(big)
    r = client.post("/_bulk", content=zipped, headers={**NDJSON, "content-encoding": "gzip"})
    assert r.status_code == 413
    assert es.docs == {}
    assert statuses(client.post("/_bulk", content=small, headers=NDJSON)) == [201]


def test_knobs_can_be_flipped_from_another_thread_while_serving(
    es: FakeEs, client: httpx.Client
) -> None:
    """Setting a knob from any thread takes effect on the next request."""
    t = threading.Thread(target=setattr, args=(es, "down", "503"))
    t.start()
    t.join()
    assert client.get("/").status_code == 503


def test_wait_for_wakes_when_a_request_satisfies_the_predicate(
    es: FakeEs, client: httpx.Client
) -> None:
    """wait_for re-checks after each request; it times out with False otherwise."""
    assert es.wait_for(lambda es: len(es.docs) == 1, timeout=0.05) is False
    timer = threading.Timer(
        0.05, lambda: client.post("/_bulk", content=creates("a"), headers=NDJSON)
    )
    timer.start()
    try:
        assert es.wait_for(lambda es: ("logs", "a") in es.docs, timeout=5) is True
    finally:
        timer.join()


def test_put_doc_and_clear(es: FakeEs, client: httpx.Client) -> None:
    """put_doc pre-seeds a document (so create conflicts); clear forgets state."""
    es.put_doc("logs", "a", {"seeded": True})
    assert statuses(client.post("/_bulk", content=creates("a"), headers=NDJSON)) == [409]
    es.clear()
    assert (es.docs, es.requests, es.first_ack) == ({}, [], {})


def test_close_returns_promptly_with_an_idle_keepalive_connection() -> None:
    """close() drops idle client connections instead of waiting for them."""
    es = FakeEs().start()
    with httpx.Client(base_url=es.url) as c:
        c.get("/")
        start = time.monotonic()
        es.close()
        assert time.monotonic() - start < 2
    es.close()  # idempotent
    with pytest.raises(RuntimeError):
        _ = es.url


# -- the socket-free transport ----------------------------------------------------------------


def test_transport_serves_sync_clients_without_a_server() -> None:
    """transport() answers from the same state, with no socket at all."""
    es = FakeEs()
    with httpx.Client(transport=es.transport(), base_url="http://es") as c:
        assert statuses(c.post("/_bulk", content=creates("a"), headers=NDJSON)) == [201]
        es.apply_then_drop = 1
        with pytest.raises(httpx.RemoteProtocolError):
            c.post("/_bulk", content=creates("b"), headers=NDJSON)
        es.down = "reset"
        with pytest.raises(httpx.ReadError):
            c.get("/")
    assert set(es.docs) == {("logs", "a"), ("logs", "b")}


async def test_transport_runs_on_the_trio_mock_clock(autojump_clock: trio.abc.Clock) -> None:
    """Latency is virtual with the async transport; acks are stamped with trio time."""
    es = FakeEs(clock=trio.current_time, latency=30.0)
    async with httpx.AsyncClient(transport=es.transport(), base_url="http://es") as c:
        start = trio.current_time()
        with trio.fail_after(60):
            r = await c.post("/_bulk", content=creates("a"), headers=NDJSON)
        assert statuses(r) == [201]
        assert trio.current_time() - start == pytest.approx(30.0)
        assert es.first_ack[("logs", "a")] == pytest.approx(start + 30.0)
        es.latency = 0
        es.down = "429"
        assert (await c.get("/")).status_code == 429
