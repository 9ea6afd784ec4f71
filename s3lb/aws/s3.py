"""S3 GET (streamed, ranged, pinned to an ETag) over httpx."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from s3lb.aws._session import AwsSession
from s3lb.errors import AccessDenied, ObjectGone, SourceUnavailable

__all__ = ["ObjectBody", "S3Client"]

_CODE = re.compile(rb"<Code>([^<]+)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class ObjectBody:
    """An open GET response: metadata and the raw (still compressed) byte stream."""

    etag: str
    version_id: str
    content_length: int | None
    start: int
    chunks: AsyncIterator[bytes]


class S3Client:
    """Reads objects; the bucket's region is learnt from S3's redirects when it differs."""

    def __init__(self, session: AwsSession, http: httpx.AsyncClient) -> None:
        self._session = session
        self._http = http
        self._bucket_region: dict[str, str] = {}

    def _url(self, bucket: str, key: str, region: str) -> str:
        endpoint = self._session.endpoint("s3", region)
        path = quote(key, safe="/~")
        if self._session.has_custom_endpoint("s3", region) or not _DNS_BUCKET.match(bucket):
            return f"{endpoint}/{bucket}/{path}"
        scheme, host = endpoint.split("://", 1)
        return f"{scheme}://{bucket}.{host}/{path}"

    @asynccontextmanager
    async def open_object(
        self,
        bucket: str,
        key: str,
        *,
        region: str,
        start: int = 0,
        if_match: str = "",
        version_id: str = "",
    ) -> AsyncIterator[ObjectBody]:
        """GET ``bucket/key`` from byte ``start``; raise ObjectGone, AccessDenied or
        SourceUnavailable. With ``if_match`` a changed object raises ObjectGone."""
        region = self._bucket_region.get(bucket, region)
        for _attempt in range(2):
            url = self._url(bucket, key, region)
            if version_id:
                url += "?versionId=" + quote(version_id, safe="")
            headers = {}
            if start:
                headers["Range"] = f"bytes={start}-"
            if if_match:
                headers["If-Match"] = f'"{if_match}"'
            signed = await self._session.sign(
                "GET", url, service="s3", region=region, headers=headers
            )
            try:
                response = await self._http.send(
                    self._http.build_request("GET", url, headers=signed), stream=True
                )
            except httpx.HTTPError as exc:
                raise SourceUnavailable(f"S3 GET failed: {type(exc).__name__}: {exc}") from None
            try:
                if response.status_code in (200, 206):
                    yield ObjectBody(
                        etag=response.headers.get("etag", "").strip('"'),
                        version_id=response.headers.get("x-amz-version-id", ""),
                        content_length=_int(response.headers.get("content-length")),
                        start=start if response.status_code == 206 else 0,
                        chunks=response.aiter_raw(CHUNK_BYTES),
                    )
                    return
                payload = await response.aread()
                moved = response.headers.get("x-amz-bucket-region")
                if moved and moved != region and response.status_code in (301, 307, 400):
                    self._bucket_region[bucket] = region = moved
                    continue
                if response.status_code == 416 and start:
                    # Range past the end: the stream had already ended at ``start``.
                    yield ObjectBody("", "", 0, start, _empty())
                    return
                _raise_for(response.status_code, payload, bucket, key)
            finally:
                await response.aclose()
        raise SourceUnavailable(f"S3 kept redirecting s3://{bucket}/{key}")


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _raise_for(status: int, payload: bytes, bucket: str, key: str) -> None:
    code_match = _CODE.search(payload)
    message_match = _MESSAGE.search(payload)
    code = code_match.group(1).decode() if code_match else str(status)
    text = message_match.group(1).decode(errors="replace") if message_match else ""
    where = f"s3://{bucket}/{key}"
    if status == 404:
        raise ObjectGone(f"{code}: {where} does not exist")
    if status == 412:
        raise ObjectGone(f"{where} changed since it was notified (ETag no longer matches)")
    if status == 403:
        raise AccessDenied(f"{code}: S3 refused {where}: {text}")
    raise SourceUnavailable(f"S3 GET {where}: HTTP {status} {code}: {text}")
