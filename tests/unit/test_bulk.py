"""Bulk encoding and per-item classification (sans-IO)."""

from __future__ import annotations

import json

import pytest

from s3lb.acks import BulkItem, ObjectTracker
from s3lb.model import ObjectRef
from s3lb.sinks.elasticsearch.bulk import build_body, classify, item_size, split_requests
from s3lb.sinks.elasticsearch.indexes import IndexNamer


def items(n: int) -> list[BulkItem]:
    tracker = ObjectTracker(ObjectRef("b", "k", "e"), lambda _t: None)
    return [BulkItem("idx", f"id{i}", b'{"n":%d}' % i, tracker, i + 1) for i in range(n)]


def test_body_is_ndjson_create_actions() -> None:
    lines = build_body(items(2)).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"create": {"_index": "idx", "_id": "id0"}},
        {"n": 0},
        {"create": {"_index": "idx", "_id": "id1"}},
        {"n": 1},
    ]


def test_each_item_status_maps_to_an_outcome() -> None:
    statuses = [201, 200, 409, 429, 503, 400, 404]
    response = {
        "errors": True,
        "items": [
            {
                "create": {
                    "status": s,
                    **({"error": {"type": "t", "reason": "r"}} if s >= 400 else {}),
                }
            }
            for s in statuses
        ],
    }
    out = classify(json.dumps(response).encode(), items(len(statuses)))
    assert [o for _, o, _ in out] == [
        "indexed",
        "indexed",
        "duplicate",
        "retry",
        "retry",
        "rejected",
        "rejected",
    ]
    assert out[5][2] == "HTTP 400 t: r"


def test_a_response_that_does_not_match_the_request_is_refused() -> None:
    with pytest.raises(ValueError):
        classify(b'{"items": []}', items(1))
    with pytest.raises(ValueError):
        classify(b"<html>proxy error</html>", items(1))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("alb-%{+yyyy.MM.dd}", "alb-2016.08.10"),
        ("alb-%{+yyyy.MM}", "alb-2016.08"),
        ("logs-%{+xxxx.ww}", "logs-2016.32"),
        ("%{[fields.env]}-%{+yyyy}", "prod-2016"),
        ("static", "static"),
    ],
)
def test_index_names_come_from_the_event_time(pattern: str, expected: str) -> None:
    namer = IndexNamer(pattern)
    doc = {"@timestamp": "2016-08-10T23:59:59.999Z", "fields": {"env": "Prod"}}
    assert namer(doc) == expected


def test_requests_are_cut_by_count_and_by_bytes_in_order() -> None:
    batch = items(10)
    size = item_size(batch[0])
    requests, oversize = split_requests(batch, max_items=4, max_bytes=10 * size)
    assert [len(r) for r in requests] == [4, 4, 2] and oversize == []
    requests, _ = split_requests(batch, max_items=100, max_bytes=3 * size)
    assert [len(r) for r in requests] == [3, 3, 3, 1]
    assert [i for r in requests for i in r] == batch
    assert all(len(build_body(r)) <= 3 * size for r in requests)


def test_a_document_larger_than_a_request_is_set_apart() -> None:
    batch = items(3)
    big = BulkItem("idx", "big", b'{"x":"' + b"a" * 500 + b'"}', batch[0].tracker, 9)
    requests, oversize = split_requests([batch[0], big, *batch[1:]], 100, 200)
    assert oversize == [big]
    assert requests == [batch]
