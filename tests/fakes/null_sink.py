"""A null ``_bulk`` endpoint for benchmarks where the cluster is not what is measured.

Run by ``bench/_harness.py``'s ``NullSink`` as ``python -m tests.fakes.null_sink``, a
process of its own (its own core share, its own GIL); prints its URL on the first line
of stdout. HTTP/1.1 with keep-alive, asyncio.

- ``POST /_bulk`` (gzip bodies too): every ``create``/``index`` item is answered 201,
  or 409 when ``--track-ids`` and the ``_id`` was seen before (then counted as a
  re-send). ``--latency`` seconds are waited before each answer.
- ``GET /`` answers like a cluster; ``GET /_bench/stats`` returns the counters;
  ``POST /_bench/reset`` clears them (and the ids seen).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gzip
import json
import re

from tests.fakes.asyncio_http import serve

_ID = re.compile(rb'"_id"\s*:\s*"([^"]*)"')
_CREATED = b'{"create":{"status":201}}'
_CONFLICT = b'{"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}}'


class State:
    def __init__(self, track_ids: bool, latency: float) -> None:
        self.track_ids = track_ids
        self.latency = latency
        self.reset()

    def reset(self) -> None:
        self.seen: set[bytes] = set()
        self.requests = 0
        self.items = 0
        self.duplicates = 0
        self.body_bytes = 0

    def stats(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "items": self.items,
            "unique": len(self.seen) if self.track_ids else self.items - self.duplicates,
            "duplicates": self.duplicates,
            "body_bytes": self.body_bytes,
        }

    def bulk(self, body: bytes) -> bytes:
        lines = body.split(b"\n")
        actions = lines[0::2]
        if actions and not actions[-1]:
            actions.pop()
        self.requests += 1
        self.items += len(actions)
        self.body_bytes += len(body)
        if not self.track_ids:
            items = b",".join([_CREATED] * len(actions))
            return b'{"took":1,"errors":false,"items":[' + items + b"]}"
        out = []
        errors = False
        seen = self.seen
        for action in actions:
            m = _ID.search(action)
            doc_id = m.group(1) if m else b""
            if doc_id in seen:
                self.duplicates += 1
                out.append(_CONFLICT)
                errors = True
            else:
                seen.add(doc_id)
                out.append(_CREATED)
        flag = b"true" if errors else b"false"
        return b'{"took":1,"errors":' + flag + b',"items":[' + b",".join(out) + b"]}"


_JSON = {"Content-Type": "application/json"}


async def answer(
    state: State, method: str, target: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """One request: a bulk, the bench's own API, or a cluster's ``GET /``."""
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    path = target.split("?", 1)[0]
    if method == "POST" and path.endswith("/_bulk"):
        if state.latency:
            await asyncio.sleep(state.latency)
        return 200, _JSON, state.bulk(body)
    if path == "/_bench/stats":
        return 200, _JSON, json.dumps(state.stats()).encode()
    if path == "/_bench/reset":
        state.reset()
        return 200, _JSON, b"{}"
    if path == "/":
        return 200, _JSON, b'{"name":"null-sink","version":{"number":"2.19.0"}}'
    return 200, _JSON, b'{"acknowledged":true}'


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--track-ids", action="store_true")
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    state = State(args.track_ids, args.latency)
    serve(functools.partial(answer, state))


if __name__ == "__main__":
    main()
