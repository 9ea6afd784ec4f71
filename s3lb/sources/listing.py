"""Listing a bucket prefix in key order, one ListObjectsV2 page at a time, skipping the
date folders far from a time window (see :mod:`s3lb.sources.window`).

Everything that is not a month or day folder outside the window, objects lying beside
the date folders included, is listed: the caller filters on LastModified.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from datetime import UTC, date, datetime
from typing import Protocol

import trio

from s3lb.aws.s3 import ListedObject, ListPage, S3Client
from s3lb.errors import SourceUnavailable
from s3lb.retry import Backoff
from s3lb.sources.window import (
    Window,
    covered,
    day_range,
    folder_span,
    level_start,
    overlap,
    prefix_path,
)
from s3lb.telemetry import Telemetry

__all__ = [
    "LIST_ATTEMPTS",
    "MAX_DEPTH",
    "MAX_FANOUT",
    "Lister",
    "PageLister",
    "bucket_pages",
    "retrying",
]

#: Levels walked below the prefix (date folders included) before listing flat.
MAX_DEPTH = 10
#: A level whose first page holds more sub-folders than this (date folders aside) is
#: listed flat: walking it would cost one call per folder.
MAX_FANOUT = 100
#: ListObjectsV2 attempts on a transient failure before the listing gives up.
LIST_ATTEMPTS = 6


class PageLister(Protocol):
    """One ListObjectsV2 call in one bucket (see :meth:`S3Client.list_page`)."""

    async def __call__(
        self,
        prefix: str,
        *,
        delimiter: str = "",
        start_after: str = "",
        continuation_token: str = "",
        max_keys: int = 1000,
    ) -> ListPage: ...


def _name(item: ListedObject | str) -> str:
    return item if isinstance(item, str) else item.key


class Lister:
    """Lists one prefix's objects in key order, planning date folders around the window.

    The objects yielded are all those *listed* (outside the window too: the caller
    filters on LastModified, and moves its cursor past them); with a date layout, days
    far from the window are never listed.
    """

    def __init__(
        self,
        list_page: PageLister,
        prefix: str,
        window: Window,
        *,
        plan: bool = True,
        page_size: int = 1000,
        today: date | None = None,
    ) -> None:
        self._list = list_page
        self.prefix = prefix
        self.page_size = page_size
        today = today or datetime.now(UTC).date()
        self.days = day_range(window, today) if plan else None

    async def objects(self, after: str = "") -> AsyncGenerator[ListedObject, None]:
        """Every listed object under the prefix whose key sorts after ``after``."""
        if self.days is None:
            gen = self._flat(self.prefix, after)
        else:
            gen = self._walk(self.prefix, after, 0, prefix_path(self.prefix))
        async with aclosing(gen) as listed:
            async for obj in listed:
                yield obj

    async def _pages(
        self, prefix: str, delimiter: str, start_after: str
    ) -> AsyncGenerator[ListPage, None]:
        token = ""
        while True:
            page = await self._list(
                prefix,
                delimiter=delimiter,
                start_after=start_after,
                continuation_token=token,
                max_keys=self.page_size,
            )
            yield page
            if not page.next_token:
                return
            token = page.next_token

    async def _flat(self, prefix: str, after: str) -> AsyncGenerator[ListedObject, None]:
        start = after if after.startswith(prefix) else ""
        async with aclosing(self._pages(prefix, "", start)) as pages:
            async for page in pages:
                for obj in page.objects:
                    if obj.key > after:
                        yield obj

    async def _walk(
        self, level: str, after: str, depth: int, path: tuple[int, ...] = ()
    ) -> AsyncGenerator[ListedObject, None]:
        """A ``/``-delimited listing of ``level``: objects in order, folders walked (or
        listed flat, or skipped when they are date folders outside the window)."""
        assert self.days is not None
        first = True
        dated = level == "" or level.endswith("/")
        async with aclosing(self._pages(level, "/", level_start(level, after))) as pages:
            async for page in pages:
                spans = {
                    folder: folder_span(path, folder[len(level) : -1]) if dated else None
                    for folder in page.prefixes
                }
                if first:
                    first = False
                    plain = sum(1 for span in spans.values() if span is None)
                    if depth >= MAX_DEPTH or plain > MAX_FANOUT:
                        async with aclosing(self._flat(level, after)) as flat:
                            async for obj in flat:
                                yield obj
                        return
                objects: Iterable[ListedObject | str] = page.objects
                folders: Iterable[ListedObject | str] = page.prefixes
                for item in heapq.merge(objects, folders, key=_name):
                    if not isinstance(item, str):
                        if item.key > after:
                            yield item
                        continue
                    if covered(item, after):
                        continue
                    span = spans[item]
                    if span is None:
                        below = self._walk(item, after, depth + 1)
                    else:
                        where = overlap(span[1], span[2], *self.days)
                        if where == "outside" and len(span[0]) > 1:
                            continue  # a month or day away from the window: not listed
                        if where == "inside":
                            below = self._flat(item, after)
                        else:  # across the window; or a year, whose months say if it is one
                            below = self._walk(item, after, depth + 1, span[0])
                    async with aclosing(below) as listed:
                        async for obj in listed:
                            yield obj


def bucket_pages(s3: S3Client, bucket: str, region: str) -> PageLister:
    """:meth:`S3Client.list_page` for ``bucket`` in ``region``, as a :class:`PageLister`."""

    async def list_page(
        prefix: str,
        *,
        delimiter: str = "",
        start_after: str = "",
        continuation_token: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        return await s3.list_page(
            bucket,
            prefix,
            region=region,
            delimiter=delimiter,
            start_after=start_after,
            continuation_token=continuation_token,
            max_keys=max_keys,
        )

    return list_page


def retrying(
    list_page: PageLister, bucket: str, telemetry: Telemetry, stop: trio.Event
) -> PageLister:
    """``list_page`` retried with backoff when S3 is unavailable: up to
    :data:`LIST_ATTEMPTS` calls, and no retry once ``stop`` is set."""

    async def retried(
        prefix: str,
        *,
        delimiter: str = "",
        start_after: str = "",
        continuation_token: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        backoff = Backoff(initial=1.0, maximum=30.0)
        while True:
            try:
                return await list_page(
                    prefix,
                    delimiter=delimiter,
                    start_after=start_after,
                    continuation_token=continuation_token,
                    max_keys=max_keys,
                )
            except SourceUnavailable as exc:
                attempt = backoff.attempt + 1
                if attempt >= LIST_ATTEMPTS or stop.is_set():
                    raise
                telemetry.warning(
                    "S3 listing failed; retrying",
                    bucket=bucket,
                    prefix=prefix,
                    attempt=attempt,
                    reason=str(exc),
                )
                await backoff.sleep()

    return retried
