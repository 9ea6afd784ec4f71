"""The fake cluster's httpx transport, noting when each request came and its ``_id`` s."""

from __future__ import annotations

import json

import httpx
import trio

from tests.fakes.fake_es import FakeEs

__all__ = ["TimedEsTransport"]


class TimedEsTransport(httpx.AsyncBaseTransport):
    """The fake cluster's transport, noting the virtual time and the ``_id`` s of every
    bulk request (bodies are not compressed in the rig's configuration)."""

    def __init__(self, fake: FakeEs) -> None:
        self.inner = fake.transport()
        self.times: list[float] = []
        self.ids: list[list[str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(trio.current_time())
        body = await request.aread()
        self.ids.append(
            [
                next(iter(action.values()))["_id"]
                for action in map(json.loads, body.splitlines()[0::2])
                if isinstance(action, dict) and action
            ]
            if request.url.path.endswith("_bulk")
            else []
        )
        return await self.inner.handle_async_request(request)
