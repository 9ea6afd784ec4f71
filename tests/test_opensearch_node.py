"""The real OpenSearch test node starts and behaves like OpenSearch for what s3lb uses.

``opensearch_url`` (tests/conftest.py) starts one node for the whole run.
"""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.slow


def _ndjson(*lines: dict) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_bulk_create_conflict_refresh_count_search(opensearch_url: str) -> None:
    docs = [
        {"@timestamp": "2024-05-01T12:00:00Z", "message": "first", "n": 1},
        {"@timestamp": "2024-05-01T12:00:01Z", "message": "second", "n": 2},
    ]
    body = _ndjson(
        {"create": {"_index": "s3lb-node-test", "_id": "doc-1"}},
        docs[0],
        {"create": {"_index": "s3lb-node-test", "_id": "doc-2"}},
        docs[1],
    )
    headers = {"content-type": "application/x-ndjson"}
    with httpx.Client(base_url=opensearch_url, timeout=60) as http:
        root = http.get("/").json()
        assert root["version"]["distribution"] == "opensearch"
        assert root["version"]["number"].startswith("2.19.")

        # index auto-created by _bulk create
        r = http.post("/_bulk", content=body, headers=headers)
        assert r.status_code == 200, r.text
        res = r.json()
        assert res["errors"] is False, res
        assert [i["create"]["status"] for i in res["items"]] == [201, 201]

        # the same ids again: the request is 200, each item 409
        r = http.post("/_bulk", content=body, headers=headers)
        assert r.status_code == 200, r.text
        res = r.json()
        assert res["errors"] is True
        items = [i["create"] for i in res["items"]]
        assert [i["status"] for i in items] == [409, 409]
        assert {i["error"]["type"] for i in items} == {"version_conflict_engine_exception"}

        r = http.post("/s3lb-node-test/_refresh")
        assert r.status_code == 200, r.text

        r = http.get("/s3lb-node-test/_count")
        assert r.status_code == 200, r.text
        assert r.json()["count"] == 2

        r = http.post(
            "/s3lb-node-test/_search",
            json={"query": {"match_all": {}}, "sort": [{"n": "asc"}]},
        )
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert hits["total"]["value"] == 2
        assert [h["_id"] for h in hits["hits"]] == ["doc-1", "doc-2"]
        assert [h["_source"] for h in hits["hits"]] == docs
