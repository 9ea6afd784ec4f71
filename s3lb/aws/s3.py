"""S3 GET (streamed, ranged, pinned to an ETag) and ListObjectsV2 over httpx."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from urllib.parse import quote, unquote_plus

import httpx

from s3lb.aws.session import AwsSession
from s3lb.errors import AccessDenied, ObjectGone, SourceUnavailable

__all__ = ["BucketMissing", "ListPage", "ListedObject", "ObjectBody", "S3Client"]

_CODE = re.compile(rb"<Code>([^<]+)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
CHUNK_BYTES = 256 * 1024


class BucketMissing(SourceUnavailable):
    """S3 answered ``NoSuchBucket`` for a GET: at this endpoint the bucket does not
    exist. Not an :class:`~s3lb.errors.ObjectGone` (which lets its message go): a wrong
    S3 endpoint or region would otherwise delete every message. The object fails, its
    message is kept for the redrive policy; retrying at once is pointless."""

    def __init__(self, bucket: str, endpoint: str, message: str) -> None:
        self.bucket = bucket
        self.endpoint = endpoint
        super().__init__(message)


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
        self._defaults = dict(http.headers)
        self._timeout = {"timeout": http.timeout.as_dict()}

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
            # Built directly: build_request's URL merging, cookie and default-header
            # handling cost ~50 us a GET and none of it applies.
            request = httpx.Request(
                "GET", url, headers={**self._defaults, **signed}, extensions=self._timeout
            )
            try:
                response = await self._http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise SourceUnavailable(f"S3 GET failed: {type(exc).__name__}: {exc}") from None
            raw = response.aiter_raw(CHUNK_BYTES)
            chunks = _interruptible(raw, f"s3://{bucket}/{key}")
            try:
                if response.status_code in (200, 206):
                    yield ObjectBody(
                        etag=response.headers.get("etag", "").strip('"'),
                        version_id=response.headers.get("x-amz-version-id", ""),
                        content_length=_int(response.headers.get("content-length")),
                        start=start if response.status_code == 206 else 0,
                        chunks=chunks,
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
                _raise_for(
                    response.status_code,
                    payload,
                    bucket,
                    key,
                    self._session.endpoint("s3", region),
                )
            finally:
                await chunks.aclose()
                await raw.aclose()  # type: ignore[attr-defined]  # an async generator
                await response.aclose()
        raise SourceUnavailable(f"S3 kept redirecting s3://{bucket}/{key}")

    async def list_page(
        self,
        bucket: str,
        prefix: str = "",
        *,
        region: str,
        delimiter: str = "",
        start_after: str = "",
        continuation_token: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        """One ListObjectsV2 call: up to ``max_keys`` objects and common prefixes, in key
        order. Raise AccessDenied, ObjectGone (no such bucket) or SourceUnavailable."""
        region = self._bucket_region.get(bucket, region)
        params = {"list-type": "2", "encoding-type": "url", "max-keys": str(max_keys)}
        if prefix:
            params["prefix"] = prefix
        if delimiter:
            params["delimiter"] = delimiter
        if continuation_token:
            params["continuation-token"] = continuation_token
        elif start_after:
            params["start-after"] = start_after
        # SigV4 signs the query as written: RFC 3986 encoding, names in order.
        query = "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))
        for _attempt in range(2):
            url = self._url(bucket, "", region) + "?" + query
            signed = await self._session.sign("GET", url, service="s3", region=region)
            try:
                response = await self._http.get(url, headers=signed)
            except httpx.HTTPError as exc:
                raise SourceUnavailable(
                    f"S3 ListObjectsV2 failed: {type(exc).__name__}: {exc}"
                ) from None
            if response.status_code == 200:
                return _parse_list(response.content, bucket)
            moved = response.headers.get("x-amz-bucket-region")
            if moved and moved != region and response.status_code in (301, 307, 400):
                self._bucket_region[bucket] = region = moved
                continue
            _raise_for_list(response.status_code, response.content, bucket, prefix)
        raise SourceUnavailable(f"S3 kept redirecting the listing of s3://{bucket}")

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        *,
        region: str,
        start_after: str = "",
        page_size: int = 1000,
    ) -> AsyncIterator[ListedObject]:
        """Every object under ``prefix`` whose key sorts after ``start_after``, in key
        order, one page (``page_size`` keys) at a time: memory stays flat."""
        token = ""
        while True:
            page = await self.list_page(
                bucket,
                prefix,
                region=region,
                start_after=start_after,
                continuation_token=token,
                max_keys=page_size,
            )
            for listed in page.objects:
                yield listed
            if not page.next_token:
                return
            token = page.next_token


async def _interruptible(chunks: AsyncIterator[bytes], where: str) -> AsyncGenerator[bytes, None]:
    """The body's chunks; a connection lost mid-body is a SourceUnavailable (the reader
    resumes from where it stopped), not an unexpected error."""
    try:
        async for chunk in chunks:
            yield chunk
    except httpx.HTTPError as exc:
        raise SourceUnavailable(
            f"S3 read of {where} interrupted: {type(exc).__name__}: {exc}"
        ) from None


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _error_of(status: int, payload: bytes) -> tuple[str, str]:
    """S3's error ``(Code, Message)`` from an XML error body."""
    code_match = _CODE.search(payload)
    message_match = _MESSAGE.search(payload)
    code = code_match.group(1).decode() if code_match else str(status)
    text = message_match.group(1).decode(errors="replace") if message_match else ""
    return code, text


def _raise_for(status: int, payload: bytes, bucket: str, key: str, endpoint: str) -> None:
    code, text = _error_of(status, payload)
    where = f"s3://{bucket}/{key}"
    if status == 404 and code == "NoSuchBucket":
        raise BucketMissing(
            bucket, endpoint, f"NoSuchBucket: bucket {bucket} does not exist at {endpoint}"
        )
    if status == 404:
        raise ObjectGone(f"{code}: {where} does not exist")
    if status == 412:
        raise ObjectGone(f"{where} changed since it was notified (ETag no longer matches)")
    if status == 403:
        raise AccessDenied(f"{code}: S3 refused {where}: {text}")
    raise SourceUnavailable(f"S3 GET {where}: HTTP {status} {code}: {text}")


class ListedObject(NamedTuple):
    """One object of a listing; ``etag`` without quotes, ``last_modified`` in UTC."""

    key: str
    size: int
    etag: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class ListPage:
    """One ListObjectsV2 answer: objects and common prefixes (with a delimiter), each in
    key order; ``next_token`` continues the listing, empty on the last page."""

    objects: list[ListedObject]
    prefixes: list[str]
    next_token: str


def _parse_list(payload: bytes, bucket: str) -> ListPage:
    try:
        root = ElementTree.fromstring(payload)
    except ElementTree.ParseError as exc:
        raise SourceUnavailable(f"S3 listing of s3://{bucket}: unreadable answer: {exc}") from None
    encoded = root.findtext("{*}EncodingType") == "url"

    def name(text: str | None) -> str:
        # With encoding-type=url, S3 form-encodes names (a space is "+").
        return unquote_plus(text or "") if encoded else (text or "")

    try:
        objects = [
            ListedObject(
                key=name(item.findtext("{*}Key")),
                size=int(item.findtext("{*}Size") or 0),
                etag=(item.findtext("{*}ETag") or "").strip('"'),
                last_modified=datetime.fromisoformat(item.findtext("{*}LastModified") or ""),
            )
            for item in root.iterfind("{*}Contents")
        ]
    except ValueError as exc:
        raise SourceUnavailable(f"S3 listing of s3://{bucket}: unreadable entry: {exc}") from None
    prefixes = [name(p.findtext("{*}Prefix")) for p in root.iterfind("{*}CommonPrefixes")]
    truncated = (root.findtext("{*}IsTruncated") or "").strip() == "true"
    token = (root.findtext("{*}NextContinuationToken") or "") if truncated else ""
    if truncated and not token:
        raise SourceUnavailable(f"S3 listing of s3://{bucket}: truncated without a token")
    return ListPage(objects, prefixes, token)


def _raise_for_list(status: int, payload: bytes, bucket: str, prefix: str) -> None:
    code, text = _error_of(status, payload)
    where = f"s3://{bucket}/{prefix}"
    if status == 404:
        raise ObjectGone(f"{code}: cannot list {where}: {text or 'no such bucket'}")
    if status == 403:
        raise AccessDenied(f"{code}: S3 refused to list {where} (s3:ListBucket): {text}")
    raise SourceUnavailable(f"S3 ListObjectsV2 {where}: HTTP {status} {code}: {text}")
