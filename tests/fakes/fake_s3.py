"""A fake S3 GetObject behind the real :class:`~s3lb.aws.s3.S3Client`, as an httpx
transport with fault knobs (statuses, resets, overwrites, latency)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

import httpx
import trio

from tests.fakes.seq import Seq

__all__ = ["FakeS3", "GetRecord", "Uploadable"]


class Uploadable(Protocol):
    """An object to store (a corpus object): where, what, and where its ETag goes."""

    bucket: str
    key: str
    body: bytes
    etag: str
    version_id: str


@dataclass
class _S3Object:
    body: bytes
    etag: str
    version_id: str = ""


@dataclass(frozen=True, slots=True)
class GetRecord:
    """One GET the fake answered: when, what, from which byte, with which status."""

    time: float
    bucket: str
    key: str
    start: int
    if_match: str
    status: int


class _Body(httpx.AsyncByteStream):
    """A response body in chunks; ``cut`` bytes in, the connection is reset."""

    def __init__(self, data: bytes, chunk: int, cut: int | None, latency: float) -> None:
        self.data, self.chunk, self.cut, self.latency = data, chunk, cut, latency

    async def __aiter__(self) -> AsyncIterator[bytes]:
        limit = len(self.data) if self.cut is None else min(self.cut, len(self.data))
        for start in range(0, limit, self.chunk):
            if self.latency:
                await trio.sleep(self.latency)
            else:
                await trio.lowlevel.checkpoint()
            yield self.data[start : min(start + self.chunk, limit)]
        if self.cut is not None:
            raise httpx.ReadError("[Errno 104] Connection reset by peer")

    async def aclose(self) -> None:
        pass


class FakeS3(httpx.AsyncBaseTransport):
    """S3 GetObject behind the real :class:`~s3lb.aws.s3.S3Client` (path-style URLs).

    Honours ``Range: bytes=N-``, ``If-Match`` and ``versionId``. Fault knobs:

    - :attr:`status_plan` ``{key: [status, ...]}``: the next GETs of ``key`` answer these
      (503 ``SlowDown``, 500, 403 ``AccessDenied``…), one per GET; 0 serves normally;
    - :attr:`reset_plan` ``{key: [nbytes, ...]}``: the next GETs of ``key`` are cut after
      ``nbytes`` bytes of body with a connection reset;
    - :attr:`overwrite_on_get` ``{key: new body}``: the object is overwritten (new ETag)
      just after the first GET of ``key`` starts;
    - :attr:`latency`: virtual seconds before each chunk.
    """

    def __init__(self, seq: Seq | None = None, chunk: int = 64 * 1024) -> None:
        self.seq = seq or Seq()
        self.chunk = chunk
        self.objects: dict[tuple[str, str], _S3Object] = {}
        self.versions: dict[tuple[str, str, str], _S3Object] = {}
        self.gets: list[GetRecord] = []
        self.status_plan: dict[str, list[int]] = {}
        self.reset_plan: dict[str, list[int]] = {}
        self.overwrite_on_get: dict[str, bytes] = {}
        self.latency = 0.0
        self._versions = itertools.count(1)

    def put(self, bucket: str, key: str, body: bytes, *, versioned: bool = False) -> _S3Object:
        """Store ``body``; the ETag is its MD5, as for a single-part upload."""
        version = f"v{next(self._versions)}" if versioned else ""
        obj = _S3Object(body, hashlib.md5(body, usedforsecurity=False).hexdigest(), version)
        self.objects[(bucket, key)] = obj
        if version:
            self.versions[(bucket, key, version)] = obj
        return obj

    def upload(self, corpus: Any, *, versioned: bool = False) -> None:
        """Store every object of ``corpus`` (a corpus, or an iterable of
        :class:`Uploadable`) and set their ETags (and version ids)."""
        objects: Iterable[Uploadable] = getattr(corpus, "objects", corpus)
        for obj in objects:
            stored = self.put(obj.bucket, obj.key, obj.body, versioned=versioned)
            obj.etag, obj.version_id = stored.etag, stored.version_id

    def delete(self, bucket: str, key: str) -> None:
        """Remove the current version."""
        self.objects.pop((bucket, key), None)

    def get_starts(self, key: str) -> list[int]:
        """The byte each successful GET of ``key`` started from."""
        return [g.start for g in self.gets if g.key == key and g.status in (200, 206)]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw_path, _, query = request.url.raw_path.decode("ascii").partition("?")
        bucket, _, key = unquote(raw_path.lstrip("/")).partition("/")
        version = parse_qs(query).get("versionId", [""])[0]
        range_header = request.headers.get("range", "")
        start = int(range_header.removeprefix("bytes=").rstrip("-")) if range_header else 0
        if_match = request.headers.get("if-match", "").strip('"')

        def answer(status: int, **kwargs: Any) -> httpx.Response:
            self.gets.append(GetRecord(trio.current_time(), bucket, key, start, if_match, status))
            return httpx.Response(status, request=request, **kwargs)

        planned = self.status_plan.get(key)
        status = planned.pop(0) if planned else 0
        if status:
            codes = {403: "AccessDenied", 500: "InternalError", 503: "SlowDown"}
            return answer(status, content=_error_xml(codes.get(status, "Error"), key))
        obj = (
            self.versions.get((bucket, key, version))
            if version
            else self.objects.get((bucket, key))
        )
        if obj is None:
            return answer(404, content=_error_xml("NoSuchKey", key))
        if if_match and if_match != obj.etag:
            return answer(412, content=_error_xml("PreconditionFailed", key))
        if start and start >= len(obj.body):
            return answer(416, content=_error_xml("InvalidRange", key))
        replacement = self.overwrite_on_get.pop(key, None)
        if replacement is not None:
            self.put(bucket, key, replacement)
        cuts = self.reset_plan.get(key)
        cut = cuts.pop(0) if cuts else None
        data = obj.body[start:]
        headers = {"etag": f'"{obj.etag}"', "content-length": str(len(data))}
        if obj.version_id:
            headers["x-amz-version-id"] = obj.version_id
        return answer(
            206 if start else 200,
            headers=headers,
            stream=_Body(data, self.chunk, cut, self.latency),
        )


def _error_xml(code: str, key: str) -> bytes:
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
        f"<Message>fake {code}</Message><Key>{key}</Key></Error>"
    ).encode()
