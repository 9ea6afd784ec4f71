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

from collections.abc import Mapping, Sequence
from itertools import compress, repeat
from typing import Any, final

from s3lb.formats._base import Document, LogFormat, ParseError
from s3lb.formats._fields import (
    INT16,
    INT32,
    INT64,
    QuotedTokenizer,
    decode_line,
    raw_url_option,
    split_host_port,
    split_request,
    to_float,
    to_int,
)
from s3lb.formats._time import iso_utc
from s3lb.formats.mappings import DATE, DOUBLE, INTEGER, IP, KEYWORD, LONG, LONG_KEYWORD

__all__ = ["FORMAT", "AlbParser"]

# The oldest ALB lines (2016) end with trace_id, the 18th field.
MIN_FIELDS = 18

# Fields 19+ (index 18+), in AWS's order. Kinds: "s" string, "i" int, "t" timestamp.
_NEWER: tuple[tuple[str, str], ...] = (
    ("domain_name", "s"),
    ("chosen_cert_arn", "s"),
    ("matched_rule_priority", "i"),
    ("request_creation_time", "t"),
    ("actions_executed", "s"),
    ("redirect_url", "s"),
    ("error_reason", "s"),
    ("target_port_list", "s"),
    ("target_status_code_list", "s"),
    ("classification", "s"),
    ("classification_reason", "s"),
    ("conn_trace_id", "s"),
    ("transformed_host", "s"),
    ("transformed_uri", "s"),
    ("request_transform_status", "s"),
)
_NEWER_NAMES = tuple(name for name, _ in _NEWER)
KNOWN_FIELDS = MIN_FIELDS + len(_NEWER)
# dict.get as a C-level predicate: False for the values that mean "empty".
_KEEP = {"-": False, "": False}
_TRUE = repeat(True)
_INT16_MIN, _INT16_MAX = INT16
_INT32_MIN, _INT32_MAX = INT32
_INT64_MAX = INT64[1]

#: Every field's name by position (the seed's 18, then AWS's newer ones).
_NAMES = (
    *["type", "time", "elb", "client:port", "target:port", "request_processing_time"],
    *["target_processing_time", "response_processing_time", "elb_status_code"],
    *["target_status_code", "received_bytes", "sent_bytes", "request", "user_agent"],
    *["ssl_cipher", "ssl_protocol", "target_group_arn", "trace_id", *_NEWER_NAMES],
)
# How AWS writes each known field: Q quoted, U bare, * either (domain_name and
# chosen_cert_arn were bare in the first lines that had them).
_QUOTING = "UUUUUUUUUUUUQQUUUQ**UUQQQQQQQUQQQ"


def _check_shape(tokens: list[str], shape: str) -> str | None:
    """Why a line's quoting does not line up with ALB's fields, or ``None``."""
    for i, (kind, want) in enumerate(zip(shape, _QUOTING, strict=False)):
        # From ssl_cipher on, AWS writes the values: a quote inside one means two
        # fields ran together ("forward""-", TID_…"-").
        if i >= 14 and '"' in tokens[i]:
            return (
                f"alb: fields do not line up: field {i + 1} ({_NAMES[i]}) holds a quote"
                f" (two fields run together): {tokens[i]!r}"
            )
        if kind == "?":
            return f"alb: field {i + 1} ({_NAMES[i]}) opens a quote that never closes"
        if want != "*" and kind != want:
            how = "quoted" if want == "Q" else "bare"
            return (
                f"alb: fields do not line up: field {i + 1} ({_NAMES[i]}) should be {how}"
                " (a missing or extra space or quote earlier in the line)"
            )
    return None


_tokenizer = QuotedTokenizer(check=_check_shape)


@final
class AlbParser:
    """Parses ALB access log lines. Stateless; one per object all the same."""

    __slots__ = ("_raw",)

    def __init__(self, raw_url: bool = False) -> None:
        self._raw = raw_url

    def parse(self, raw: bytes) -> Document | None:
        """Return the document for one ALB line (``None`` for a blank line)."""
        line = decode_line(raw)
        # The lines of one object share a shape: try its regex before anything else.
        shape = _tokenizer.current
        m = shape.match(line) if shape is not None else None
        t = m.groups() if m is not None else _tokenizer.split(line)
        n = len(t)
        if n < MIN_FIELDS:
            if not t:
                return None
            raise ParseError(f"alb: expected at least {MIN_FIELDS} fields, got {n}")
        try:
            return _fast(t, n, self._raw)
        except (ValueError, ParseError):
            # Something unusual: the careful path handles it or says what is wrong.
            return _careful(t, n, self._raw)


def _fast(t: Sequence[str], n: int, raw: bool) -> Document:
    """The common case, inlined for speed; raises ValueError on anything unusual."""
    cip, sep, port = t[3].rpartition(":")
    cport = int(port)
    if not sep or not 0 <= cport <= 65535:
        raise ValueError
    doc: dict[str, Any] = {
        "@timestamp": iso_utc(t[1]),
        "type": t[0],
        "elb": t[2],
        "client_ip": cip,
        "client_port": cport,
    }
    v = t[4]
    if v != "-":
        tip, sep, port = v.rpartition(":")
        tport = int(port)
        if not sep or not 0 <= tport <= 65535:
            raise ValueError
        doc["target_ip"] = tip
        doc["target_port"] = tport
    # x - x is NaN (truthy) only for inf/NaN, which JSON cannot carry.
    v = t[5]
    if v != "-1":
        x = doc["request_processing_time"] = float(v)
        if x - x:
            raise ValueError
    v = t[6]
    if v != "-1":
        x = doc["target_processing_time"] = float(v)
        if x - x:
            raise ValueError
    v = t[7]
    if v != "-1":
        x = doc["response_processing_time"] = float(v)
        if x - x:
            raise ValueError
    i = doc["elb_status_code"] = int(t[8])
    if not _INT16_MIN <= i <= _INT16_MAX:
        raise ValueError
    v = t[9]
    if v != "-":
        i = doc["target_status_code"] = int(v)
        if not _INT16_MIN <= i <= _INT16_MAX:
            raise ValueError
    i = doc["received_bytes"] = int(t[10])
    j = doc["sent_bytes"] = int(t[11])
    if i > _INT64_MAX or j > _INT64_MAX or i < -_INT64_MAX or j < -_INT64_MAX:
        raise ValueError
    split_request(t[12], doc, raw)
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
    v = t[16]
    if v != "-" and v[:4] != "arn:":
        raise ValueError
    if v:
        doc["target_group_arn"] = v
    if t[17]:
        doc["trace_id"] = t[17]
    if n >= KNOWN_FIELDS:
        _newer(t, doc)
    elif n > MIN_FIELDS:
        values = t[MIN_FIELDS:KNOWN_FIELDS]
        doc.update(compress(zip(_NEWER_NAMES, values, strict=False), map(_KEEP.get, values, _TRUE)))
        priority = doc.get("matched_rule_priority")
        if priority is not None:
            i = doc["matched_rule_priority"] = int(priority)
            if not _INT32_MIN <= i <= _INT32_MAX:
                raise ValueError
        created = doc.get("request_creation_time")
        if created is not None:
            doc["request_creation_time"] = iso_utc(created)
        cert = doc.get("chosen_cert_arn")
        if cert is not None and cert[:4] != "arn:" and cert != "session-reused":
            raise ValueError
    return doc


def _newer(t: Sequence[str], doc: dict[str, Any]) -> None:
    """The fields AWS appended after the 18th, in a line that has them all: what the
    loop over :data:`_NEWER` does for shorter lines, one field at a time (faster)."""
    v = t[18]
    if v != "-" and v:
        doc["domain_name"] = v
    v = t[19]
    if v != "-" and v:
        if v[:4] != "arn:" and v != "session-reused":
            raise ValueError
        doc["chosen_cert_arn"] = v
    v = t[20]
    if v != "-" and v:
        i = doc["matched_rule_priority"] = int(v)
        if not _INT32_MIN <= i <= _INT32_MAX:
            raise ValueError
    v = t[21]
    if v != "-" and v:
        doc["request_creation_time"] = iso_utc(v)
    v = t[22]
    if v != "-" and v:
        doc["actions_executed"] = v
    v = t[23]
    if v != "-" and v:
        doc["redirect_url"] = v
    v = t[24]
    if v != "-" and v:
        doc["error_reason"] = v
    v = t[25]
    if v != "-" and v:
        doc["target_port_list"] = v
    v = t[26]
    if v != "-" and v:
        doc["target_status_code_list"] = v
    v = t[27]
    if v != "-" and v:
        doc["classification"] = v
    v = t[28]
    if v != "-" and v:
        doc["classification_reason"] = v
    v = t[29]
    if v != "-" and v:
        doc["conn_trace_id"] = v
    v = t[30]
    if v != "-" and v:
        doc["transformed_host"] = v
    v = t[31]
    if v != "-" and v:
        doc["transformed_uri"] = v
    v = t[32]
    if v != "-" and v:
        doc["request_transform_status"] = v


def _careful(t: Sequence[str], n: int, raw: bool) -> Document:
    """Every field checked on its own: a ``-`` anywhere is omitted, errors are named."""
    doc: dict[str, Any] = {"@timestamp": iso_utc(t[1]), "type": t[0], "elb": t[2]}
    doc["client_ip"], doc["client_port"] = split_host_port(t[3], "client")
    v = t[4]
    if v != "-":
        doc["target_ip"], doc["target_port"] = split_host_port(v, "target")
    for i, name in ((5, "request"), (6, "target"), (7, "response")):
        v = t[i]
        if v != "-1" and v != "-":
            doc[name + "_processing_time"] = to_float(v, name + "_processing_time")
    # The seed failed an ALB line with elb_status_code "-"; s3lb omits it instead.
    for i, name in ((8, "elb_status_code"), (9, "target_status_code")):
        v = t[i]
        if v != "-":
            doc[name] = to_int(v, name, INT16)
    for i, name in ((10, "received_bytes"), (11, "sent_bytes")):
        v = t[i]
        if v != "-":
            doc[name] = to_int(v, name)
    split_request(t[12], doc, raw)
    for i, name in ((13, "user_agent"), (14, "ssl_cipher"), (15, "ssl_protocol")):
        v = t[i]
        if v != "-" and v:
            doc[name] = v
    v = t[16]
    if v != "-" and not v.startswith("arn:"):
        raise ParseError(f"alb: fields do not line up: target_group_arn is not an ARN: {v!r}")
    if v:
        doc["target_group_arn"] = v
    if t[17]:
        doc["trace_id"] = t[17]
    for i, (name, kind) in enumerate(_NEWER[: n - MIN_FIELDS], start=MIN_FIELDS):
        v = t[i]
        if v == "-" or not v:
            continue
        if name == "chosen_cert_arn" and not v.startswith("arn:") and v != "session-reused":
            raise ParseError(f"alb: fields do not line up: chosen_cert_arn is not an ARN: {v!r}")
        if kind == "s":
            doc[name] = v
        elif kind == "i":
            doc[name] = to_int(v, name, INT32)
        else:
            doc[name] = iso_utc(v)
    return doc


def _new_parser(options: Mapping[str, Any]) -> AlbParser:
    return AlbParser(raw_url_option(options))


#: Index mappings of the fields this format writes (dotted paths for nested objects).
MAPPINGS: dict[str, dict[str, Any]] = {
    "type": KEYWORD,
    "elb": KEYWORD,
    "client_ip": IP,
    "client_port": INTEGER,
    "target_ip": IP,
    "target_port": INTEGER,
    "request_processing_time": DOUBLE,
    "target_processing_time": DOUBLE,
    "response_processing_time": DOUBLE,
    "elb_status_code": INTEGER,
    "target_status_code": INTEGER,
    "received_bytes": LONG,
    "sent_bytes": LONG,
    "request_verb": KEYWORD,
    "request_url": LONG_KEYWORD,
    "request_url_raw": LONG_KEYWORD,
    "request_proto": KEYWORD,
    "user_agent": LONG_KEYWORD,
    "ssl_cipher": KEYWORD,
    "ssl_protocol": KEYWORD,
    "target_group_arn": KEYWORD,
    "trace_id": KEYWORD,
    "domain_name": KEYWORD,
    "chosen_cert_arn": KEYWORD,
    "matched_rule_priority": INTEGER,
    "request_creation_time": DATE,
    "actions_executed": KEYWORD,
    "redirect_url": LONG_KEYWORD,
    "error_reason": KEYWORD,
    "target_port_list": KEYWORD,
    "target_status_code_list": KEYWORD,
    "classification": KEYWORD,
    "classification_reason": KEYWORD,
    "conn_trace_id": KEYWORD,
    "transformed_host": KEYWORD,
    "transformed_uri": LONG_KEYWORD,
    "request_transform_status": KEYWORD,
}


FORMAT = LogFormat(
    name="alb",
    fields=MAPPINGS,
    new_parser=_new_parser,
    validate_options=raw_url_option,
    description="Application Load Balancer access logs",
)
