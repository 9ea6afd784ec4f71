"""Time windows on LastModified, bucket URLs, and the AWS-style ``YYYY/MM/DD/`` folders
worth listing for a window (pure: no I/O).

With a window, a listing walks the ``/``-separated levels below the prefix; where it
meets a date layout (a folder named like a year, holding folders named like months,
holding folders named like days) it skips the month and day folders that lie wholly
outside the window, with a day of margin on each side (logs are written after the
period their key names).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from s3lb.errors import ConfigError

__all__ = [
    "Window",
    "covered",
    "day_range",
    "folder_span",
    "format_time",
    "level_start",
    "overlap",
    "parse_bucket_url",
    "parse_time",
    "prefix_path",
]

DAY = timedelta(days=1)

_YEAR = re.compile(r"(?:19|20)\d\d")


def parse_time(text: str, where: str) -> datetime:
    """An ISO 8601 time or date as an aware UTC datetime.

    Accepts ``2024-01-31``, ``2018-10-15T01:00``, ``2024-01-31T12:00:00Z``,
    ``2024-01-31 12:00:00+02:00``…: no zone means UTC; a date means its midnight (UTC).

    Raises:
        ConfigError: naming ``where`` (a config key or a command-line flag).
    """
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"not an ISO 8601 time or date: {text!r} (e.g. 2024-01-31, 2018-10-15T01:00, "
            "2024-01-31T12:00:00Z)",
            where,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime | None) -> str:
    """``2024-01-31T12:00:00Z`` (whole seconds, UTC); ``-`` for None (unbounded)."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_bucket_url(url: str, where: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → ``("bucket", "prefix")``; ``s3://bucket`` and
    ``s3://bucket/`` both mean the whole bucket (``""``). The prefix is used as S3 means
    it: ``s3://b/logs`` also lists ``logs-old/``; write ``s3://b/logs/`` for the folder.

    Raises:
        ConfigError: naming ``where`` when there is no bucket name.
    """
    rest = url.strip()
    if rest.startswith("s3://"):
        rest = rest[len("s3://") :]
    elif "://" in rest:
        raise ConfigError(f"expected s3://bucket or s3://bucket/prefix, got {url!r}", where)
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ConfigError(f"no bucket name in {url!r}", where)
    return bucket, prefix


@dataclass(frozen=True, slots=True)
class Window:
    """``since`` (inclusive) to ``to`` (exclusive) on LastModified; None is unbounded."""

    since: datetime | None = None
    to: datetime | None = None

    def __contains__(self, moment: datetime) -> bool:
        if self.since is not None and moment < self.since:
            return False
        return self.to is None or moment < self.to

    @property
    def bounded(self) -> bool:
        """True when at least one side is set."""
        return self.since is not None or self.to is not None

    def __str__(self) -> str:
        return f"since={format_time(self.since)} to={format_time(self.to)}"


def day_range(window: Window, today: date) -> tuple[date, date] | None:
    """The key days worth listing for ``window``, inclusive, with a day of margin on
    each side; an open end stops at the oldest date or at ``today`` + 1. None when the
    window is unbounded (then everything is listed)."""
    if not window.bounded:
        return None
    first = date.min
    if window.since is not None:
        since_day = window.since.date()
        first = since_day - DAY if since_day > date.min else since_day
    if window.to is not None:
        last = (window.to - timedelta(microseconds=1)).date() + DAY
    else:
        last = today + DAY
    return first, last


def folder_span(path: tuple[int, ...], segment: str) -> tuple[tuple[int, ...], date, date] | None:
    """The next date folder of an AWS-style ``YYYY/MM/DD/`` layout.

    ``path`` is where the folder's parent sits in the layout (``()`` outside one,
    ``(year,)`` inside a year folder, ``(year, month)`` inside a month folder);
    ``segment`` is the folder's name. Returns the folder's own path and the first and
    last day it covers, or None when the name is not the layout's next part.
    """
    if not segment.isdigit() or not segment.isascii():
        return None
    if not path:
        if not _YEAR.fullmatch(segment):
            return None
        year = int(segment)
        return (year,), date(year, 1, 1), date(year, 12, 31)
    if len(segment) != 2:
        return None
    if len(path) == 1:
        year, month = path[0], int(segment)
        if not 1 <= month <= 12:
            return None
        days = calendar.monthrange(year, month)[1]
        return (year, month), date(year, month, 1), date(year, month, days)
    if len(path) == 2:
        year, month, day = *path, int(segment)
        if not 1 <= day <= calendar.monthrange(year, month)[1]:
            return None
        return (year, month, day), date(year, month, day), date(year, month, day)
    return None


def prefix_path(prefix: str) -> tuple[int, ...]:
    """The date path of a prefix that ends inside a layout: ``logs/2024/`` → ``(2024,)``,
    ``logs/2024/03/`` → ``(2024, 3)``; ``()`` otherwise."""
    segments = prefix.split("/")[:-1]
    for n in (3, 2, 1):
        if len(segments) < n:
            continue
        path: tuple[int, ...] = ()
        for segment in segments[-n:]:
            span = folder_span(path, segment)
            if span is None:
                break
            path = span[0]
        else:
            return path
    return ()


def overlap(start: date, end: date, first: date, last: date) -> str:
    """``inside``, ``outside`` or ``partial``: where ``[start, end]`` lies relative to
    the days worth listing, ``[first, last]``."""
    if end < first or start > last:
        return "outside"
    if first <= start and end <= last:
        return "inside"
    return "partial"


def covered(prefix: str, after: str) -> bool:
    """True when every key under ``prefix`` sorts at or before ``after``."""
    return after >= prefix and not after.startswith(prefix)


def level_start(level: str, after: str) -> str:
    """The ``start-after`` of a ``/``-delimited listing of ``level`` that resumes after
    key ``after`` without losing the folder ``after`` is in (S3 compares folders by name:
    ``a/`` sorts before ``a/b/c``, so ``start-after=a/b/c`` would drop ``a/``)."""
    if not after.startswith(level):
        return ""
    rest = after[len(level) :]
    slash = rest.find("/")
    return after if slash < 0 else level + rest[:slash]
