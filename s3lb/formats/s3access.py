"""Amazon S3 server access logs (``log_format: s3access``).

Space-separated; ``[time]`` is bracketed and Request-URI, Referer and User-Agent are
``"quoted"``. Names are AWS's column names in snake_case. ``key`` is decoded (AWS
form-encodes it, ``+`` = space); ``request_uri`` stays as sent. ``-`` is omitted
everywhere. Older lines have fewer fields (down to ``user_agent``); newer trailing
fields past the 27th are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, final

from s3lb.formats._base import Document, LogFormat, ParseError
from s3lb.formats._fields import INT64, QuotedTokenizer, decode_line, to_int, url_decode_plus
from s3lb.formats._time import format_dt
from s3lb.formats.mappings import INTEGER, IP, KEYWORD, LONG, LONG_KEYWORD

__all__ = ["FIELDS", "FORMAT", "S3AccessParser"]

# Through User-Agent (field 17); anything shorter is not an access log line.
MIN_FIELDS = 17

#: Column names by position (index 2, the time, becomes @timestamp). The 27th field's
#: official name is unconfirmed; it holds the region the request came from.
FIELDS: tuple[str, ...] = (
    "bucket_owner",
    "bucket",
    "time",
    "remote_ip",
    "requester",
    "request_id",
    "operation",
    "key",
    "request_uri",
    "http_status",
    "error_code",
    "bytes_sent",
    "object_size",
    "total_time",
    "turn_around_time",
    "referer",
    "user_agent",
    "version_id",
    "host_id",
    "signature_version",
    "cipher_suite",
    "authentication_type",
    "host_header",
    "tls_version",
    "access_point_arn",
    "acl_required",
    "source_region",
)
_INTS = frozenset(("http_status", "bytes_sent", "object_size", "total_time", "turn_around_time"))
_tokenizer = QuotedTokenizer(brackets=True)
_times: dict[str, str] = {}


def _s3_time(value: str) -> str:
    """``06/Feb/2019:00:00:38 +0000`` → ``2019-02-06T00:00:38.000Z`` (cached)."""
    stamp = _times.get(value)
    if stamp is None:
        try:
            stamp = format_dt(datetime.strptime(value, "%d/%b/%Y:%H:%M:%S %z"))
        except ValueError:
            raise ParseError(f"s3access: invalid time [{value}]") from None
        if len(_times) >= 4096:
            _times.clear()
        _times[value] = stamp
    return stamp


@final
class S3AccessParser:
    """Parses S3 server access log lines. Stateless."""

    __slots__ = ()

    def parse(self, raw: bytes) -> Document | None:
        """Return the document for one access log line (``None`` for a blank line)."""
        line = decode_line(raw)
        t = _tokenizer.split(line.rstrip(" "))
        n = len(t)
        if n < MIN_FIELDS:
            if not t:
                return None
            raise ParseError(f"s3access: expected at least {MIN_FIELDS} fields, got {n}")
        doc: dict[str, Any] = {"@timestamp": _s3_time(t[2])}
        for name, value in zip(FIELDS, t, strict=False):
            if value == "-" or not value or name == "time":
                continue
            if name in _INTS:
                doc[name] = to_int(value, name, INT64)
            elif name == "key":
                doc[name] = url_decode_plus(value)
            else:
                doc[name] = value
        return doc


def _new_parser(options: Mapping[str, Any]) -> S3AccessParser:
    return S3AccessParser()


#: Index mappings of the fields this format writes (dotted paths for nested objects).
MAPPINGS: dict[str, dict[str, Any]] = {
    "bucket_owner": KEYWORD,
    "bucket": KEYWORD,
    "remote_ip": IP,
    "requester": KEYWORD,
    "request_id": KEYWORD,
    "operation": KEYWORD,
    "key": LONG_KEYWORD,
    "request_uri": LONG_KEYWORD,
    "http_status": INTEGER,
    "error_code": KEYWORD,
    "bytes_sent": LONG,
    "object_size": LONG,
    "total_time": LONG,
    "turn_around_time": LONG,
    "referer": LONG_KEYWORD,
    "user_agent": LONG_KEYWORD,
    "version_id": KEYWORD,
    "host_id": KEYWORD,
    "signature_version": KEYWORD,
    "cipher_suite": KEYWORD,
    "authentication_type": KEYWORD,
    "host_header": KEYWORD,
    "tls_version": KEYWORD,
    "access_point_arn": KEYWORD,
    "acl_required": KEYWORD,
    "source_region": KEYWORD,
}


FORMAT = LogFormat(
    name="s3access",
    fields=MAPPINGS,
    new_parser=_new_parser,
    description="Amazon S3 server access logs",
)
