"""The bulk protocol alone (sans-IO): encoding, decoding, outcomes, splits."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3lb.acks import BulkItem, ObjectTracker
from s3lb.model import ObjectRef
from s3lb.sinks.elasticsearch.bulk import (
    build_body,
    classify,
    delete_body,
    halves,
    index_body,
    item_size,
    on_too_large,
    outcome_of,
    partition,
    split_requests,
)
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


def answer(statuses: list[int], errors: bool, spacing: str = "") -> bytes:
    """A bulk answer with one ``create`` item per status, ``errors`` as given."""
    items = ",".join(
        f'{{"create":{{"_index":"idx","_id":"x","status"{spacing}:{spacing}{s}}}}}'
        for s in statuses
    )
    return f'{{"took":3,"errors":{json.dumps(errors)},"items":[{items}]}}'.encode()


def test_errors_false_over_failed_items_is_not_trusted() -> None:
    """Issue 16.9: a proxy answering errors:false with 429 items lost those documents."""
    out = classify(answer([201, 429, 503], errors=False), items(3))
    assert [o for _, o, _ in out] == ["indexed", "retry", "retry"]
    out = classify(answer([201, 400], errors=False, spacing=" "), items(2))
    assert [o for _, o, _ in out] == ["indexed", "rejected"]


@given(st.lists(st.sampled_from([200, 201, 409, 400, 404, 413, 429, 500, 503]), min_size=1))
def test_each_item_gets_the_outcome_of_its_status_whatever_errors_says(
    statuses: list[int],
) -> None:
    sent = items(len(statuses))
    for errors in (True, False):
        out = classify(answer(statuses, errors), sent)
        assert [o for _, o, _ in out] == [outcome_of(s) for s in statuses]
        assert [i for i, _, _ in out] == sent


@given(st.lists(st.sampled_from(["indexed", "duplicate", "retry", "rejected"])))
def test_a_partition_keeps_every_item_once_in_order(outcomes: list[str]) -> None:
    results = [
        (n, o, f"r{n}" if o in ("retry", "rejected") else "") for n, o in enumerate(outcomes)
    ]
    part = partition(results)  # type: ignore[arg-type]
    groups = [part.indexed, part.duplicate, part.retry, [n for n, _ in part.rejected]]
    assert sorted(n for g in groups for n in g) == list(range(len(outcomes)))
    assert all(g == sorted(g) for g in groups)
    assert sum(part.retry_reasons.values()) == len(part.retry)


@given(st.lists(st.integers(0, 2000), min_size=1, max_size=60), st.integers(1, 20))
def test_requests_keep_order_and_limits_and_halves_cover_the_request(
    sizes: list[int], max_items: int
) -> None:
    tracker = ObjectTracker(ObjectRef("b", "k", "e"), lambda _t: None)
    batch = [
        BulkItem("idx", f"id{n}", b'"%s"' % (b"x" * s), tracker, n) for n, s in enumerate(sizes)
    ]
    requests, oversize = split_requests(batch, max_items, 1500)
    assert [i for r in requests for i in r] == [i for i in batch if i not in oversize]
    assert all(len(r) <= max_items and len(build_body(r)) <= 1500 for r in requests)
    assert all(item_size(i) > 1500 for i in oversize)
    for request in requests:
        first, second = halves(request)
        assert first + second == request and abs(len(first) - len(second)) <= 1


def test_a_413_splits_and_a_lone_document_is_rejected_only_if_really_large() -> None:
    assert on_too_large(2, 100, 0) == "split"
    assert on_too_large(1, 5000, 3000) == "reject"  # the cluster took smaller ones only
    assert on_too_large(1, 5000, 8000) == "outage"  # the cluster took larger bodies before
    assert on_too_large(1, 5000, 0) == "outage"  # nothing got in yet, and it is small
    assert on_too_large(1, 100_000, 0) == "reject"


def test_index_and_delete_bodies_are_ndjson_actions() -> None:
    body = index_body([("dl", "a1", {"k": "v"}), ("dl", 'q"', {"n": 1})])
    assert [json.loads(line) for line in body.decode().splitlines()] == [
        {"index": {"_index": "dl", "_id": "a1"}},
        {"k": "v"},
        {"index": {"_index": "dl", "_id": 'q"'}},
        {"n": 1},
    ]
    assert [json.loads(line) for line in delete_body("dl", ["a", "b"]).splitlines()] == [
        {"delete": {"_index": "dl", "_id": "a"}},
        {"delete": {"_index": "dl", "_id": "b"}},
    ]
