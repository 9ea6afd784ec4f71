"""CloudFront standard (legacy) access logs (``log_format: cloudfront``).

Tab-separated, with ``#Version`` and ``#Fields`` header lines. Columns are mapped by the
``#Fields`` line of the object (the parser keeps it as state); without one, the
documented 33-column order is assumed. Field names are the header names in snake_case
(``cs(User-Agent)`` → ``cs_user_agent``), which are the seed's names.

Seed rules kept: ``date`` + ``time`` become ``@timestamp``; the seed's seven
URL-encoded fields are decoded repeatedly (CloudFront double-encodes); ``-`` is
omitted only for ``cs_uri_query``, ``cs_bytes``, ``x_forwarded_for``, ``ssl_protocol``,
``ssl_cipher``, ``fle_status`` and ``fle_encrypted_fields`` (so ``cs_cookie "-"`` stays).
Columns the seed never had are omitted when ``-``. Empty columns (a trailing tab) are
omitted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, final

from s3lb.formats._base import Document, LogFormat, ParseError
from s3lb.formats._fields import (
    INT16,
    INT64,
    UINT16,
    UINT64,
    decode_line,
    deep_url_decode,
    to_float,
    to_int,
)
from s3lb.formats._time import iso_utc
from s3lb.formats.mappings import DOUBLE, INTEGER, IP, KEYWORD, LONG, LONG_KEYWORD

__all__ = ["DEFAULT_FIELDS", "FORMAT", "CloudFrontParser", "field_name"]

#: The 33 columns of the legacy format, as AWS writes them in ``#Fields``.
DEFAULT_FIELDS: tuple[str, ...] = tuple(
    [
        "date",
        "time",
        "x-edge-location",
        "sc-bytes",
        "c-ip",
        "cs-method",
        "cs(Host)",
        "cs-uri-stem",
        "sc-status",
        "cs(Referer)",
        "cs(User-Agent)",
        "cs-uri-query",
        "cs(Cookie)",
        "x-edge-result-type",
        "x-edge-request-id",
        "x-host-header",
        "cs-protocol",
        "cs-bytes",
        "time-taken",
        "x-forwarded-for",
        "ssl-protocol",
        "ssl-cipher",
        "x-edge-response-result-type",
        "cs-protocol-version",
        "fle-status",
        "fle-encrypted-fields",
        "c-port",
        "time-to-first-byte",
        "x-edge-detailed-result-type",
        "sc-content-type",
        "sc-content-len",
        "sc-range-start",
        "sc-range-end",
    ]
)

# Columns the seed parsed, and among them the ones whose "-" it dropped.
_SEED_FIELDS = frozenset(
    [
        "x_edge_location",
        "sc_bytes",
        "c_ip",
        "cs_method",
        "cs_host",
        "cs_uri_stem",
        "sc_status",
        "cs_referer",
        "cs_user_agent",
        "cs_uri_query",
        "cs_cookie",
        "x_edge_result_type",
        "x_edge_request_id",
        "x_host_header",
        "cs_protocol",
        "cs_bytes",
        "time_taken",
        "x_forwarded_for",
        "ssl_protocol",
        "ssl_cipher",
        "x_edge_response_result_type",
        "cs_protocol_version",
        "fle_status",
        "fle_encrypted_fields",
    ]
)
_SEED_EMPTY = frozenset(
    [
        "cs_uri_query",
        "cs_bytes",
        "x_forwarded_for",
        "ssl_protocol",
        "ssl_cipher",
        "fle_status",
        "fle_encrypted_fields",
    ]
)
_DEEP_DECODED = frozenset(
    [
        "x_edge_location",
        "cs_host",
        "cs_uri_stem",
        "cs_referer",
        "cs_user_agent",
        "cs_uri_query",
        "cs_cookie",
    ]
)


def _int(bounds: tuple[int, int]) -> Callable[[str, str], Any]:
    def convert(value: str, name: str) -> Any:
        return to_int(value, name, bounds)

    return convert


def _text(value: str, name: str) -> Any:
    return value


def _deep(value: str, name: str) -> Any:
    return deep_url_decode(value)


_CONVERTERS: dict[str, Callable[[str, str], Any]] = {
    "sc_bytes": _int(UINT64),
    "cs_bytes": _int(UINT64),
    "sc_status": _int(INT16),
    "time_taken": to_float,
    "c_port": _int(UINT16),
    "time_to_first_byte": to_float,
    "sc_content_len": _int(INT64),
    "sc_range_start": _int(INT64),
    "sc_range_end": _int(INT64),
    **dict.fromkeys(_DEEP_DECODED, _deep),
}


def field_name(header_name: str) -> str:
    """``cs(User-Agent)`` → ``cs_user_agent``: the document name of a ``#Fields`` name."""
    return header_name.replace("(", "_").replace(")", "").replace("-", "_").lower()


class _Layout:
    """Where each column goes, built once per distinct ``#Fields`` line."""

    __slots__ = ("columns", "date", "time")

    def __init__(self, header: tuple[str, ...]) -> None:
        names = [field_name(h) for h in header]
        self.date = names.index("date") if "date" in names else -1
        self.time = names.index("time") if "time" in names else -1
        # (index, name, converter, drop_dash): the seed kept "-" in its other columns,
        # but rejected a line with "-" in a number; s3lb omits such numbers.
        self.columns: list[tuple[int, str, Callable[[str, str], Any], bool]] = []
        for i, name in enumerate(names):
            if i in (self.date, self.time):
                continue
            convert = _CONVERTERS.get(name, _text)
            drop_dash = (
                name not in _SEED_FIELDS or name in _SEED_EMPTY or convert not in (_text, _deep)
            )
            self.columns.append((i, name, convert, drop_dash))


_DEFAULT_LAYOUT = _Layout(DEFAULT_FIELDS)
_layouts: dict[str, _Layout] = {}


@final
class CloudFrontParser:
    """Parses one object's lines; remembers its ``#Fields`` header."""

    __slots__ = ("_layout",)

    def __init__(self) -> None:
        self._layout = _DEFAULT_LAYOUT

    def parse(self, raw: bytes) -> Document | None:
        """Return the document for one line; ``None`` for headers and blank lines."""
        line = decode_line(raw)
        if line.startswith("#"):
            if line.startswith("#Fields:"):
                spec = line[len("#Fields:") :].strip()
                layout = _layouts.get(spec)
                if layout is None:
                    layout = _Layout(tuple(spec.split()))
                    if len(_layouts) < 64:
                        _layouts[spec] = layout
                self._layout = layout
            return None
        if not line.strip():
            return None
        values = line.split("\t")
        layout = self._layout
        n = len(values)
        if layout.date < 0 or layout.time < 0:
            raise ParseError("cloudfront: the #Fields header has no date and time columns")
        if layout.date >= n or layout.time >= n:
            raise ParseError(f"cloudfront: expected date and time columns, got {n} columns")
        stamp = values[layout.date] + "T" + values[layout.time]
        doc: dict[str, Any] = {"@timestamp": iso_utc(stamp + ".000Z")}
        for i, name, convert, drop_dash in layout.columns:
            if i >= n:
                break
            value = values[i]
            if not value or (drop_dash and value == "-"):
                continue
            doc[name] = convert(value, name)
        return doc


def _new_parser(options: Mapping[str, Any]) -> CloudFrontParser:
    return CloudFrontParser()


#: Index mappings of the fields this format writes (dotted paths for nested objects).
MAPPINGS: dict[str, dict[str, Any]] = {
    "x_edge_location": KEYWORD,
    "sc_bytes": LONG,
    "c_ip": IP,
    "cs_method": KEYWORD,
    "cs_host": KEYWORD,
    "cs_uri_stem": LONG_KEYWORD,
    "sc_status": INTEGER,
    "cs_referer": LONG_KEYWORD,
    "cs_user_agent": LONG_KEYWORD,
    "cs_uri_query": LONG_KEYWORD,
    "cs_cookie": LONG_KEYWORD,
    "x_edge_result_type": KEYWORD,
    "x_edge_request_id": KEYWORD,
    "x_host_header": KEYWORD,
    "cs_protocol": KEYWORD,
    "cs_bytes": LONG,
    "time_taken": DOUBLE,
    # A list of addresses ("a, b") when proxies chain: not one IP.
    "x_forwarded_for": KEYWORD,
    "ssl_protocol": KEYWORD,
    "ssl_cipher": KEYWORD,
    "x_edge_response_result_type": KEYWORD,
    "cs_protocol_version": KEYWORD,
    "fle_status": KEYWORD,
    "fle_encrypted_fields": KEYWORD,
    "c_port": INTEGER,
    "time_to_first_byte": DOUBLE,
    "x_edge_detailed_result_type": KEYWORD,
    "sc_content_type": KEYWORD,
    "sc_content_len": LONG,
    "sc_range_start": LONG,
    "sc_range_end": LONG,
}


FORMAT = LogFormat(
    name="cloudfront",
    fields=MAPPINGS,
    new_parser=_new_parser,
    description="CloudFront standard (legacy) access logs, tab-separated with #Fields",
    stateful=True,
)
