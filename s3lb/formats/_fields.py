"""Shared field helpers: line decoding, the quote-aware tokenizer, numbers, URL decoding.

The seed (s3logsbeat) stored numbers with Go integer widths (``uint16`` ports, ``int16``
status codes, ``int64`` byte counts); a value out of range made the whole line fail.
The converters here keep those ranges and raise :class:`ParseError` naming the field.
"""

from __future__ import annotations

import math
import re
from itertools import repeat
from operator import itemgetter
from typing import Any
from urllib.parse import unquote, unquote_plus

from s3lb.formats._base import ParseError

__all__ = [
    "INT16",
    "INT32",
    "INT64",
    "UINT16",
    "UINT32",
    "UINT64",
    "decode_line",
    "deep_url_decode",
    "split_host_port",
    "split_quoted",
    "split_request",
    "to_float",
    "to_int",
    "url_decode",
    "url_decode_plus",
]

INT16 = (-(2**15), 2**15 - 1)
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT16 = (0, 2**16 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)


def decode_line(raw: bytes) -> str:
    """Decode one record as UTF-8; invalid bytes become U+FFFD instead of failing."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def to_int(value: str, name: str, bounds: tuple[int, int] = INT64) -> int:
    """Parse a decimal integer within ``bounds`` (a Go integer width).

    Raises:
        ParseError: not an integer, or out of range.
    """
    try:
        number = int(value)
    except ValueError:
        raise ParseError(f"{name}: not an integer: {value!r}") from None
    if not bounds[0] <= number <= bounds[1]:
        raise ParseError(f"{name}: {number} is out of range {bounds[0]}..{bounds[1]}")
    return number


def to_float(value: str, name: str) -> float:
    """Parse a finite decimal number.

    Raises:
        ParseError: not a number, or NaN/infinite (JSON cannot carry them).
    """
    try:
        number = float(value)
    except ValueError:
        raise ParseError(f"{name}: not a number: {value!r}") from None
    if not math.isfinite(number):
        raise ParseError(f"{name}: not a finite number: {value!r}")
    return number


def split_host_port(value: str, name: str) -> tuple[str, int]:
    """Split ``ip:port``; IPv6 addresses carry no brackets, so cut at the last ``:``.

    Raises:
        ParseError: no port, or the port is not a uint16.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ParseError(f"{name}: expected ip:port, got {value!r}")
    return host, to_int(port, name + "_port", UINT16)


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def url_decode_plus(value: str) -> str:
    """Decode like Go's ``url.QueryUnescape`` (``+`` is a space), but never fail.

    The seed rejected a line whose field held a malformed ``%`` escape; s3lb keeps such
    escapes as they are instead (a URL logged as sent can hold ``%%%%``).
    """
    if "%" not in value and "+" not in value:
        return value
    return unquote_plus(value)


def url_decode(value: str) -> str:
    """Percent-decode once (``+`` stays a ``+``); malformed escapes are kept."""
    if "%" not in value:
        return value
    return unquote(value)


def deep_url_decode(value: str) -> str:
    """Decode again and again until nothing changes or an escape is malformed.

    The seed's ``deepurlencoded`` kind: CloudFront double-encodes (``%2520``).
    """
    if "%" not in value and "+" not in value:
        return value
    current = value
    for _ in range(8):  # bounded: each round must shrink the string anyway
        if _BAD_ESCAPE.search(current):
            return current
        decoded = unquote_plus(current)
        if decoded == current:
            return current
        current = decoded
    return current


# --- quote-aware tokenizer ----------------------------------------------------------
#
# ALB, CLB and S3 access logs separate fields with single spaces, and double-quote the
# fields that may hold spaces. A regex over the whole line is slow in CPython, so the
# fast path splits on '"' (one C call), then checks the result against a *plan* cached
# per number of quote-separated parts: which unquoted stretches must be exactly one
# space, and how many spaces the others hold. A line that fits its plan is assembled
# with one itemgetter call; anything else (a quote inside a quoted field, double
# spaces, a new layout) goes through the careful slow path, which is always right.

_SPACES = repeat(" ")  # an endless " " argument for map(str.count, ...)
_SLOW_TOKEN = re.compile(r'"((?:[^"]|"(?! |\Z))*)"(?= |\Z)|"([^"]*)$|([^ ]+)')


def _split_quoted_slow(line: str) -> list[str]:
    """Tokenize carefully: a quote closes only when a space or the end follows it."""
    out: list[str] = []
    for quoted, unclosed, bare in _SLOW_TOKEN.findall(line):
        out.append(quoted or unclosed or bare)
    return out


class _Plan:
    __slots__ = ("_single_expect", "getter", "multi", "single", "spaces", "total")

    def __init__(self, parts: list[str]) -> None:
        stretches = parts[::2]
        last = len(stretches) - 1
        single: list[int] = []
        multi: list[int] = []
        spaces: list[int] = []
        order: list[int] = []
        n_quoted = len(parts) // 2
        unquoted = 0
        for k, stretch in enumerate(stretches):
            if 0 < k < last and stretch == " ":
                single.append(k)
            else:
                multi.append(k)
                spaces.append(stretch.count(" "))
                for _ in stretch.split():
                    order.append(n_quoted + unquoted)
                    unquoted += 1
            if k < last:
                order.append(k)
        if len(single) == 1:
            single *= 2  # itemgetter of one index returns an item, not a tuple
        self.single = itemgetter(*single) if single else None
        self.multi = itemgetter(*multi) if len(multi) > 1 else None
        self.spaces = tuple(spaces)
        self.total = unquoted
        self.getter = itemgetter(*order) if len(order) > 1 else None
        # The single-space stretches, as the getter returns them, for one comparison.
        self._single_expect = (" ",) * len(single)

    def apply(self, parts: list[str]) -> list[str] | None:
        stretches = parts[::2]
        if self.single is not None and self.single(stretches) != self._single_expect:
            return None
        if self.multi is None or self.getter is None:
            return None
        multi = self.multi(stretches)
        if tuple(map(str.count, multi, _SPACES)) != self.spaces:
            return None
        unquoted = " ".join(multi).split()
        if len(unquoted) != self.total:
            return None
        return list(self.getter(parts[1::2] + unquoted))


def _plan_fits(parts: list[str]) -> bool:
    """True if the split parts frame quoted fields properly (single spaces around)."""
    stretches = parts[::2]
    last = len(stretches) - 1
    for k, stretch in enumerate(stretches):
        if k > 0 and not stretch.startswith(" ") and not (k == last and stretch == ""):
            return False
        if k < last and not stretch.endswith(" ") and not (k == 0 and stretch == ""):
            return False
        if "  " in stretch:
            return False
    return True


_plans: dict[int, _Plan] = {}


def split_quoted(line: str) -> list[str]:
    """Split a space-separated line whose fields may be ``"double quoted"``.

    Quoted values come back without their quotes, so ``"-"`` gives ``-``.
    """
    if '"' not in line:
        return line.split()
    parts = line.split('"')
    width = len(parts)
    if width & 1:
        plan = _plans.get(width)
        if plan is not None:
            tokens = plan.apply(parts)
            if tokens is not None:
                return tokens
        if _plan_fits(parts):
            # Learn (or re-learn) this layout from a line known to be well framed.
            plan = _Plan(parts)
            if width in _plans or len(_plans) < 64:
                _plans[width] = plan
            tokens = plan.apply(parts)
            if tokens is not None:
                return tokens
    return _split_quoted_slow(line)


def split_request(request: str, doc: dict[str, Any]) -> None:
    """Store ``request_verb``, ``request_url`` and ``request_proto`` of an ELB request.

    The URL is logged as sent and may hold spaces, so the line is cut at its first and
    last space. The seed's quirk for TCP/SSL listeners is kept: ``"- - - "`` gives the
    verb ``-``, the URL ``-`` and the protocol ``"- "`` (dash and space). The URL is
    decoded like Go's ``url.QueryUnescape`` (``+`` is a space), as the seed did. Empty
    parts are omitted.
    """
    verb, sep, rest = request.partition(" ")
    if verb:
        doc["request_verb"] = verb
    if not sep:
        return
    if rest.endswith(" - "):
        url, proto = rest[:-3], "- "
    else:
        url, _, proto = rest.rpartition(" ")
        if not _:
            url, proto = rest, ""
    if url:
        doc["request_url"] = url_decode_plus(url)
    if proto:
        doc["request_proto"] = proto
