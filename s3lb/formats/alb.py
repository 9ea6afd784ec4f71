"""Application Load Balancer access logs (``log_format: alb``).

Space-separated, some fields ``"quoted"``; mapped by position, as AWS only ever appends
fields. The first 18 fields keep the seed's names, types and empty-value rules
(``time`` becomes ``@timestamp``; ``client:port``, ``target:port`` and ``request`` are
split; ``-1`` timings and ``-`` are omitted for the fields the seed listed, while
``target_group_arn`` and ``trace_id`` keep a ``-`` as the seed did). Newer fields use
AWS's snake_case names and are omitted when ``-``. Tokens past the last known field are
dropped. See docs/formats.md for the full field list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, final

from s3lb.formats._base import Document, LogFormat, ParseError
from s3lb.formats._fields import (
    INT16,
    INT32,
    split_host_port,
    split_quoted,
    split_request,
    to_float,
    to_int,
)
from s3lb.formats._time import iso_utc

__all__ = ["FORMAT", "AlbParser"]

# The oldest ALB lines (2016) end with trace_id, the 18th field.
MIN_FIELDS = 18

# Fields 19+ (index 18+): (name, kind). Kinds: "s" string, "i" int, "t" timestamp.
_NEWER: tuple[tuple[int, str, str], ...] = (
    (18, "domain_name", "s"),
    (19, "chosen_cert_arn", "s"),
    (20, "matched_rule_priority", "i"),
    (21, "request_creation_time", "t"),
    (22, "actions_executed", "s"),
    (23, "redirect_url", "s"),
    (24, "error_reason", "s"),
    (25, "target_port_list", "s"),
    (26, "target_status_code_list", "s"),
    (27, "classification", "s"),
    (28, "classification_reason", "s"),
    (29, "conn_trace_id", "s"),
    (30, "transformed_host", "s"),
    (31, "transformed_uri", "s"),
    (32, "request_transform_status", "s"),
)
_EMPTY = ("-", "")


@final
class AlbParser:
    """Parses ALB access log lines. Stateless; one per object all the same."""

    __slots__ = ()

    def parse(self, raw: bytes) -> Document | None:
        """Return the document for one ALB line (``None`` for a blank line)."""
        try:
            line = raw.decode()
        except UnicodeDecodeError:
            line = raw.decode("utf-8", "replace")
        t = split_quoted(line)
        n = len(t)
        if n < MIN_FIELDS:
            if not t:
                return None
            raise ParseError(f"alb: expected at least {MIN_FIELDS} fields, got {n}")
        doc: dict[str, Any] = {"@timestamp": iso_utc(t[1]), "type": t[0], "elb": t[2]}
        doc["client_ip"], doc["client_port"] = split_host_port(t[3], "client")
        v = t[4]
        if v != "-":
            doc["target_ip"], doc["target_port"] = split_host_port(v, "target")
        v = t[5]
        if v != "-1" and v != "-":
            doc["request_processing_time"] = to_float(v, "request_processing_time")
        v = t[6]
        if v != "-1" and v != "-":
            doc["target_processing_time"] = to_float(v, "target_processing_time")
        v = t[7]
        if v != "-1" and v != "-":
            doc["response_processing_time"] = to_float(v, "response_processing_time")
        v = t[8]
        if v != "-":
            doc["elb_status_code"] = to_int(v, "elb_status_code", INT16)
        v = t[9]
        if v != "-":
            doc["target_status_code"] = to_int(v, "target_status_code", INT16)
        v = t[10]
        if v != "-":
            doc["received_bytes"] = to_int(v, "received_bytes")
        v = t[11]
        if v != "-":
            doc["sent_bytes"] = to_int(v, "sent_bytes")
        split_request(t[12], doc)
        v = t[13]
        if v != "-" and v:
            doc["user_agent"] = v
        v = t[14]
        if v != "-" and v:
            doc["ssl_cipher"] = v
        v = t[15]
        if v != "-" and v:
            doc["ssl_protocol"] = v
        # The seed kept "-" in these two (no empty value was declared for them).
        if t[16]:
            doc["target_group_arn"] = t[16]
        if t[17]:
            doc["trace_id"] = t[17]
        if n > 18:
            for i, name, kind in _NEWER:
                if i >= n:
                    break
                v = t[i]
                if v in _EMPTY:
                    continue
                if kind == "s":
                    doc[name] = v
                elif kind == "i":
                    doc[name] = to_int(v, name, INT32)
                else:
                    doc[name] = iso_utc(v)
        return doc


def _new_parser(options: Mapping[str, Any]) -> AlbParser:
    return AlbParser()


FORMAT = LogFormat(
    name="alb",
    new_parser=_new_parser,
    description="Application Load Balancer access logs",
)
