"""Shared field helpers: line decoding, the quote-aware tokenizer, numbers, URL decoding.

The seed (s3logsbeat) stored numbers with Go integer widths (``uint16`` ports, ``int16``
status codes, ``int64`` byte counts); a value out of range made the whole line fail.
The converters here keep those ranges and raise :class:`ParseError` naming the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, final
from urllib.parse import unquote, unquote_plus

from s3lb.formats._base import ParseError

__all__ = [
    "INT16",
    "INT32",
    "INT64",
    "UINT16",
    "UINT32",
    "UINT64",
    "QuotedTokenizer",
    "decode_line",
    "deep_url_decode",
    "raw_url_option",
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
    if "%" not in value:  # what unquote_plus comes to, without its calls
        return value.replace("+", " ") if "+" in value else value
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
# ALB, CLB and S3 access logs separate fields with single spaces and double-quote the
# fields that may hold spaces (S3 also brackets its time). Tokenizing with a general
# regex per token is slow in CPython, so a tokenizer learns the *shape* of the lines it
# sees (which tokens are quoted, how many there are) and compiles one anchored regex of
# plain positional groups per shape: one C-level match then returns every field. A line
# that fits no known shape goes through the careful slow path, which is always right,
# and teaches its shape when the shape's regex reproduces exactly the same tokens.

_SLOW = re.compile(r'"((?:[^"]|"(?! |\Z))*)"(?= |\Z)|"([^"]*)\Z|([^ ]+)')
_SLOW_BRACKETS = re.compile(
    r'"((?:[^"]|"(?! |\Z))*)"(?= |\Z)|"([^"]*)\Z|\[([^\]]*)\](?= |\Z)|([^ ]+)'
)
_SHAPE_PART = {"Q": r'"([^"]*)"', "B": r"\[([^\]]*)\]", "U": r'([^ "][^ ]*)'}
_SHAPE_PART_BRACKETS = {**_SHAPE_PART, "U": r'([^ "\[][^ ]*)'}


def _split_slow(line: str, brackets: bool) -> tuple[list[str], str]:
    """Tokenize carefully: a quote closes only before a space or the end of the line.

    Returns the tokens and the line's shape (Q quoted, B bracketed, U bare per token).
    """
    tokens: list[str] = []
    shape: list[str] = []
    for m in (_SLOW_BRACKETS if brackets else _SLOW).finditer(line):
        groups = m.groups()
        if groups[0] is not None:
            tokens.append(groups[0])
            shape.append("Q")
        elif groups[1] is not None:  # a quote never closed: take the rest of the line
            tokens.append(groups[1])
            shape.append("?")
        elif brackets and groups[2] is not None:
            tokens.append(groups[2])
            shape.append("B")
        else:
            tokens.append(groups[-1])
            shape.append("U")
    return tokens, "".join(shape)


@final
class QuotedTokenizer:
    """Splits space-separated lines whose fields may be ``"double quoted"``.

    Quoted values come back without their quotes (``"-"`` gives ``-``); with
    ``brackets=True`` a ``[bracketed]`` token comes back without its brackets too.
    Instances cache the shapes they learn: keep one per format, at module level.
    """

    __slots__ = ("_brackets", "_check", "_max_shapes", "_shapes")

    def __init__(
        self,
        brackets: bool = False,
        max_shapes: int = 8,
        check: Callable[[list[str], str], str | None] | None = None,
    ) -> None:
        self._brackets = brackets
        self._max_shapes = max_shapes
        #: Says what is wrong with a line's tokens and shape (``None``: nothing); a wrong
        #: line is a ParseError and never learned, so the fast path knows good shapes only.
        self._check = check
        self._shapes: list[re.Pattern[str]] = []

    @property
    def current(self) -> re.Pattern[str] | None:
        """The most recently used shape's regex: callers may try it inline first."""
        return self._shapes[0] if self._shapes else None

    def split(self, line: str) -> Sequence[str]:
        """Return the tokens of ``line``."""
        shapes = self._shapes
        for i, regex in enumerate(shapes):
            m = regex.match(line)
            if m is not None:
                if i:  # keep the shape of the current object first
                    shapes.insert(0, shapes.pop(i))
                return m.groups()
        tokens, shape = _split_slow(line, self._brackets)
        if self._check is not None and tokens:
            reason = self._check(tokens, shape)
            if reason is not None:
                raise ParseError(reason)
        if tokens and "?" not in shape:
            self._learn(line, tokens, shape)
        return tokens

    def _learn(self, line: str, tokens: list[str], shape: str) -> None:
        parts = _SHAPE_PART_BRACKETS if self._brackets else _SHAPE_PART
        regex = re.compile(" ".join(parts[kind] for kind in shape) + r"\Z")
        m = regex.match(line)
        # Learn only when the fast regex gives exactly what the careful path gave.
        if m is not None and list(m.groups()) == tokens:
            self._shapes.insert(0, regex)
            del self._shapes[self._max_shapes :]


_default_tokenizer = QuotedTokenizer()


def split_quoted(line: str) -> Sequence[str]:
    """Split ``line`` with a shared :class:`QuotedTokenizer` (tests, rare formats)."""
    return _default_tokenizer.split(line)


def split_request(request: str, doc: dict[str, Any], raw: bool = False) -> None:
    """Store ``request_verb``, ``request_url`` and ``request_proto`` of an ELB request.

    The URL is logged as sent and may hold spaces, so the line is cut at its first and
    last space. The seed's quirk for TCP/SSL listeners is kept: ``"- - - "`` gives the
    verb ``-``, the URL ``-`` and the protocol ``"- "`` (dash and space). The URL is
    decoded like Go's ``url.QueryUnescape`` (``+`` is a space), as the seed did; with
    ``raw`` the URL as logged is kept too, in ``request_url_raw``. Empty parts are
    omitted.
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
        if raw:
            doc["request_url_raw"] = url
    if proto:
        doc["request_proto"] = proto


def decode_line(raw: bytes) -> str:
    """A record's text: UTF-8, with invalid bytes replaced rather than fatal."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


#: ``log_format_options`` of the formats that split a request line (alb, elb).
RAW_URL_OPTION = "raw_request_url"


def raw_url_option(options: Mapping[str, Any]) -> bool:
    """Whether ``raw_request_url`` is on; raises ValueError for other options or values."""
    unknown = sorted(set(options) - {RAW_URL_OPTION})
    if unknown:
        raise ValueError(f"unknown log_format_options {unknown}; expected [{RAW_URL_OPTION!r}]")
    value = options.get(RAW_URL_OPTION, False)
    if isinstance(value, str):
        if value.lower() in ("true", "yes", "1"):
            return True
        if value.lower() in ("false", "no", "0", ""):
            return False
    elif isinstance(value, bool):
        return value
    raise ValueError(f"log_format_options.{RAW_URL_OPTION} must be true or false, got {value!r}")
