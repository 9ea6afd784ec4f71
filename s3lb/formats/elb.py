"""Classic Load Balancer access logs (``log_format: elb``, alias ``clb``).

Fifteen space-separated fields, ``request`` and ``user_agent`` quoted. Names, types and
empty values are the seed's: ``timestamp`` becomes ``@timestamp``, ``client:port`` and
``backend:port`` are split, ``-1`` timings and ``-`` status codes are omitted, and TCP/SSL
listeners keep the seed's ``request_verb "-"``, ``request_url "-"``,
``request_proto "- "``. Extra trailing tokens are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, final

from s3lb.formats._base import Document, LogFormat, ParseError
from s3lb.formats._fields import (
    INT16,
    QuotedTokenizer,
    decode_line,
    raw_url_option,
    split_host_port,
    split_request,
    to_float,
    to_int,
)
from s3lb.formats._time import iso_utc
from s3lb.formats.mappings import DOUBLE, INTEGER, IP, KEYWORD, LONG, LONG_KEYWORD

__all__ = ["CLB_ALIAS", "FORMAT", "ElbParser"]

# Through the request line; user_agent and the ssl fields came later (2014–2015).
MIN_FIELDS = 12
_tokenizer = QuotedTokenizer()


@final
class ElbParser:
    """Parses Classic ELB access log lines. Stateless."""

    __slots__ = ("_raw",)

    def __init__(self, raw_url: bool = False) -> None:
        self._raw = raw_url

    def parse(self, raw: bytes) -> Document | None:
        """Return the document for one Classic ELB line (``None`` for a blank line)."""
        line = decode_line(raw)
        t = _tokenizer.split(line)
        n = len(t)
        if n < MIN_FIELDS:
            if not t:
                return None
            raise ParseError(f"elb: expected at least {MIN_FIELDS} fields, got {n}")
        doc: dict[str, Any] = {"@timestamp": iso_utc(t[0]), "elb": t[1]}
        doc["client_ip"], doc["client_port"] = split_host_port(t[2], "client")
        v = t[3]
        if v != "-":
            doc["backend_ip"], doc["backend_port"] = split_host_port(v, "backend")
        v = t[4]
        if v != "-1" and v != "-":
            doc["request_processing_time"] = to_float(v, "request_processing_time")
        v = t[5]
        if v != "-1" and v != "-":
            doc["backend_processing_time"] = to_float(v, "backend_processing_time")
        v = t[6]
        if v != "-1" and v != "-":
            doc["response_processing_time"] = to_float(v, "response_processing_time")
        v = t[7]
        if v != "-":
            doc["elb_status_code"] = to_int(v, "elb_status_code", INT16)
        v = t[8]
        if v != "-":
            doc["backend_status_code"] = to_int(v, "backend_status_code", INT16)
        v = t[9]
        if v != "-":
            doc["received_bytes"] = to_int(v, "received_bytes")
        v = t[10]
        if v != "-":
            doc["sent_bytes"] = to_int(v, "sent_bytes")
        split_request(t[11], doc, self._raw)
        if n > 12:
            v = t[12]
            if v != "-" and v:
                doc["user_agent"] = v
        if n > 13:
            v = t[13]
            if v != "-" and v:
                doc["ssl_cipher"] = v
        if n > 14:
            v = t[14]
            if v != "-" and v:
                doc["ssl_protocol"] = v
        return doc


def _new_parser(options: Mapping[str, Any]) -> ElbParser:
    return ElbParser(raw_url_option(options))


#: Index mappings of the fields this format writes (dotted paths for nested objects).
MAPPINGS: dict[str, dict[str, Any]] = {
    "elb": KEYWORD,
    "client_ip": IP,
    "client_port": INTEGER,
    "backend_ip": IP,
    "backend_port": INTEGER,
    "request_processing_time": DOUBLE,
    "backend_processing_time": DOUBLE,
    "response_processing_time": DOUBLE,
    "elb_status_code": INTEGER,
    "backend_status_code": INTEGER,
    "received_bytes": LONG,
    "sent_bytes": LONG,
    "request_verb": KEYWORD,
    "request_url": LONG_KEYWORD,
    "request_url_raw": LONG_KEYWORD,
    "request_proto": KEYWORD,
    "user_agent": LONG_KEYWORD,
    "ssl_cipher": KEYWORD,
    "ssl_protocol": KEYWORD,
}


FORMAT = LogFormat(
    name="elb",
    fields=MAPPINGS,
    new_parser=_new_parser,
    validate_options=raw_url_option,
    description="Classic Load Balancer access logs",
)

#: The same format under the name ``clb``.
CLB_ALIAS = LogFormat(
    name="clb",
    alias_of="elb",
    fields=MAPPINGS,
    new_parser=_new_parser,
    validate_options=raw_url_option,
    description="Classic Load Balancer access logs (alias of elb)",
)
