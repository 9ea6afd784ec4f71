"""Timestamp conversion to the document's ``@timestamp`` string.

Every format ends with ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, cut (never rounded) to
milliseconds, as libbeat wrote it. Conversions are hot (one per line), so the helpers
cache the validated "second" part: AWS logs come in time order within an object, and
thousands of lines share one second.

``go_layout`` translates a Go reference layout (``2006-01-02 15:04:05``), the seed's
``time:<layout>`` timestamp format, into a parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from s3lb.formats._base import ParseError

__all__ = [
    "epoch_ms",
    "epoch_seconds",
    "format_dt",
    "go_layout",
    "iso8601",
    "iso_utc",
    "iso_utc_naive",
    "timestamp_parser",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CACHE_MAX = 4096

# "YYYY-MM-DDTHH:MM:SS" prefixes already checked to be a real date and time.
_valid_seconds: dict[str, bool] = {}


def format_dt(dt: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, cut to ms."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )


def _check_seconds(head: str) -> bool:
    """True if ``head`` (``YYYY-MM-DDTHH:MM:SS``) is a real UTC date and time."""
    ok = _valid_seconds.get(head)
    if ok is None:
        try:
            ok = (
                len(head) == 19
                and head.isascii()
                and head[4] == "-"
                and head[7] == "-"
                and head[10] == "T"
                and head[13] == ":"
                and head[16] == ":"
                and datetime.strptime(head, "%Y-%m-%dT%H:%M:%S") is not None
            )
        except ValueError:
            ok = False
        if len(_valid_seconds) >= _CACHE_MAX:
            _valid_seconds.clear()
        _valid_seconds[head] = ok
    return ok


def iso_utc(value: str) -> str:
    """Convert ALB/CLB ``2016-08-10T22:08:42.945958Z`` (any fraction, or none) fast.

    Falls back to :func:`iso8601` for anything that is not ``...Z`` UTC.
    """
    # Fast path: the string already is UTC ISO; only cut the fraction to 3 digits.
    if len(value) >= 24 and value[19] == "." and value[-1] == "Z":
        frac = value[20:-1]
        head = value[:19]
        # The cache first: a call less for the thousands of lines of one second.
        if frac.isdigit() and frac.isascii() and (_valid_seconds.get(head) or _check_seconds(head)):
            return value[:23] + "Z"
    return iso8601(value)


def iso_utc_naive(value: str) -> str:
    """Convert NLB's zone-less UTC ``2018-12-20T02:59:40`` (fraction allowed)."""
    if len(value) == 19 and _check_seconds(value):
        return value + ".000Z"
    return iso8601(value + "Z") if value and value[-1] not in "Zz" else iso8601(value)


_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))\Z"
)


def iso8601(value: str) -> str:
    """Convert an RFC 3339 timestamp (Go's ``time.RFC3339Nano``) with a zone.

    Raises:
        ParseError: the value is not such a timestamp.
    """
    m = _ISO_RE.match(value) if isinstance(value, str) else None
    if m is None:
        raise ParseError(f"not an ISO 8601 timestamp with a time zone: {value!r}")
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=UTC)
    except ValueError as exc:
        raise ParseError(f"invalid timestamp {value!r}: {exc}") from None
    if not z:
        offset = timedelta(hours=int(oh), minutes=int(om))
        dt = dt - offset if sign == "+" else dt + offset
    return format_dt(dt)


# Epoch second -> "YYYY-MM-DDTHH:MM:SS"; lines of one object share a few seconds.
_second_text: dict[int, str] = {}


def _second(sec: int) -> str:
    text = _second_text.get(sec)
    if text is None:
        try:
            dt = _EPOCH + timedelta(seconds=sec)
        except OverflowError:
            raise ParseError(f"epoch time out of range: {sec}") from None
        text = (
            f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
            f"{dt.second:02d}"
        )
        if len(_second_text) >= _CACHE_MAX:
            _second_text.clear()
        _second_text[sec] = text
    return text


def _as_int(value: object, what: str) -> int:
    # bool is an int subclass, but true/false is no time.
    if isinstance(value, bool):
        raise ParseError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ParseError(f"{what}: expected a number, got {value!r}")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit() and text.isascii():
            return int(text)
    raise ParseError(f"{what}: expected an integer, got {value!r}")


def epoch_ms(value: object) -> str:
    """Convert epoch milliseconds (an int, or a string of digits) — ``timeUnixMilliseconds``."""
    ms = _as_int(value, "epoch milliseconds")
    sec, frac = divmod(ms, 1000)
    return f"{_second(sec)}.{frac:03d}Z"


def epoch_seconds(value: object) -> str:
    """Convert epoch seconds (an int, or a string of digits)."""
    return _second(_as_int(value, "epoch seconds")) + ".000Z"


# --- Go reference layouts ----------------------------------------------------------

_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}

# Go layout chunks, longest first where one is a prefix of another (see Go's
# time/format.go nextStdChunk). Each maps to a regex fragment.
_CHUNKS: list[tuple[str, str]] = [
    ("January", r"(?P<month_name>[A-Za-z]{3,9})"),
    ("Jan", r"(?P<month_name>[A-Za-z]{3})"),
    ("Monday", r"(?:[A-Za-z]{6,9})"),
    ("Mon", r"(?:[A-Za-z]{3})"),
    ("MST", r"(?P<zone_name>[A-Z]{3,5}|[+-]\d{2,4})"),
    ("2006", r"(?P<year>\d{4})"),
    ("002", r"(?P<yday>\d{3})"),
    ("__2", r"(?P<yday> {0,2}\d{1,3})"),
    ("01", r"(?P<month>\d{2})"),
    ("02", r"(?P<day>\d{2})"),
    ("03", r"(?P<hour12>\d{2})"),
    ("04", r"(?P<minute>\d{2})"),
    ("05", r"(?P<second>\d{2})"),
    ("06", r"(?P<year2>\d{2})"),
    ("_2", r"(?P<day> ?\d{1,2})"),
    ("15", r"(?P<hour>\d{1,2})"),
    ("1", r"(?P<month>\d{1,2})"),
    ("2", r"(?P<day>\d{1,2})"),
    ("3", r"(?P<hour12>\d{1,2})"),
    ("4", r"(?P<minute>\d{1,2})"),
    ("5", r"(?P<second>\d{1,2})"),
    ("PM", r"(?P<ampm>[AP]M)"),
    ("pm", r"(?P<ampm>[ap]m)"),
    ("Z07:00:00", r"(?P<zone>Z|[+-]\d{2}:\d{2}:\d{2})"),
    ("Z070000", r"(?P<zone>Z|[+-]\d{6})"),
    ("Z07:00", r"(?P<zone>Z|[+-]\d{2}:\d{2})"),
    ("Z0700", r"(?P<zone>Z|[+-]\d{4})"),
    ("Z07", r"(?P<zone>Z|[+-]\d{2})"),
    ("-07:00:00", r"(?P<zone>[+-]\d{2}:\d{2}:\d{2})"),
    ("-070000", r"(?P<zone>[+-]\d{6})"),
    ("-07:00", r"(?P<zone>[+-]\d{2}:\d{2})"),
    ("-0700", r"(?P<zone>[+-]\d{4})"),
    ("-07", r"(?P<zone>[+-]\d{2})"),
]
_FRAC_RE = re.compile(r"[.,](0+|9+)(?![0-9])")


def _translate_go_layout(layout: str) -> re.Pattern[str]:
    """Turn a Go reference layout into an anchored regex with named groups."""
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(layout):
        frac = _FRAC_RE.match(layout, i)
        if frac is not None and out and out[-1].startswith("(?P<second>"):
            digits = frac.group(1)
            if digits[0] == "0":  # fixed width
                out.append(rf"[.,](?P<frac>\d{{{len(digits)}}})")
            else:  # optional, any width
                out.append(r"(?:[.,](?P<frac>\d+))?")
            seen.add("frac")
            i = frac.end()
            continue
        for chunk, pattern in _CHUNKS:
            if layout.startswith(chunk, i):
                # "2006" only counts as a year when not inside a longer number; Go
                # does the same check for "_2006" too. Keep it simple: take it.
                group = re.match(r"\(\?P<(\w+)>", pattern)
                if group is not None and group.group(1) in seen:
                    # A repeated element: match it but do not capture it twice.
                    pattern = re.sub(r"\(\?P<\w+>", "(?:", pattern)
                elif group is not None:
                    seen.add(group.group(1))
                out.append(pattern)
                i += len(chunk)
                break
        else:
            out.append(re.escape(layout[i]))
            i += 1
        # Go accepts a fractional second right after the seconds even when the layout
        # has none; allow it unless the layout itself says what follows.
        if out[-1].startswith("(?P<second>") and not _FRAC_RE.match(layout, i):
            out.append(r"(?:[.,](?P<frac>\d+))?")
            seen.add("frac")
    return re.compile("".join(out) + r"\Z")


def go_layout(layout: str) -> Callable[[object], str]:
    """Build a converter for Go's ``time.Parse(layout, value)``.

    Elements without a zone are UTC, as in Go. Missing date parts default to
    January 1st of year 1 (Go's year 0 does not exist in Python).

    Raises:
        ValueError: the layout holds no time element at all.
    """
    regex = _translate_go_layout(layout)
    if not regex.groupindex:
        raise ValueError(f"Go time layout {layout!r} has no date or time element")

    def convert(value: object) -> str:
        if not isinstance(value, str):
            raise ParseError(f"time layout {layout!r}: expected a string, got {value!r}")
        m = regex.match(value)
        if m is None:
            raise ParseError(f"time {value!r} does not match layout {layout!r}")
        return format_dt(_from_groups(m.groupdict(), value))

    return convert


def _from_groups(g: dict[str, str | None], value: str) -> datetime:
    try:
        if g.get("year") is not None:
            year = int(g["year"] or 0)
        elif g.get("year2") is not None:
            y2 = int(g["year2"] or 0)
            year = 1900 + y2 if y2 >= 69 else 2000 + y2  # Go's pivot
        else:
            year = 1
        month = 1
        if g.get("month") is not None:
            month = int(g["month"] or 0)
        elif g.get("month_name") is not None:
            month = _MONTHS[(g["month_name"] or "").lower()]
        day = int((g.get("day") or "1").strip())
        hour = int(g.get("hour") or 0)
        if g.get("hour12") is not None:
            hour = int(g["hour12"] or 0)
            if not 1 <= hour <= 12:
                raise ValueError("hour out of range for a 12-hour clock")
            ampm = (g.get("ampm") or "AM").upper()
            hour = hour % 12 + (12 if ampm == "PM" else 0)
        minute = int(g.get("minute") or 0)
        second = int(g.get("second") or 0)
        micro = int((g.get("frac") or "0")[:6].ljust(6, "0"))
        dt = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
        if g.get("yday") is not None and g.get("month") is None and g.get("day") is None:
            dt += timedelta(days=int((g["yday"] or "1").strip()) - 1)
    except (KeyError, ValueError) as exc:
        raise ParseError(f"invalid time {value!r}: {exc}") from None
    zone = g.get("zone")
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        seconds = int(digits[4:6] or 0)
        offset = timedelta(hours=hours, minutes=minutes, seconds=seconds)
        dt = dt - offset if zone[0] == "+" else dt + offset
    return dt


def timestamp_parser(spec: str) -> Callable[[object], str]:
    """Converter for a seed ``timestamp_format``: ``timeUnixMilliseconds``,
    ``timeISO8601`` or ``time:<Go layout>``.

    Raises:
        ValueError: ``spec`` names no supported time format.
    """
    if spec == "timeUnixMilliseconds":
        return epoch_ms
    if spec == "timeISO8601":

        def convert_iso(value: object) -> str:
            if not isinstance(value, str):
                raise ParseError(f"timeISO8601: expected a string, got {value!r}")
            return iso8601(value)

        return convert_iso
    if spec.startswith("time:"):
        return go_layout(spec[len("time:") :])
    raise ValueError(
        f"unsupported timestamp_format {spec!r}: use timeUnixMilliseconds, timeISO8601 "
        "or time:<Go layout> (for example time:2006-01-02 15:04:05)"
    )
