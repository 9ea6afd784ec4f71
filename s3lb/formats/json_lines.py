"""JSON lines (``log_format: json``), and the formats built on it (``waf``).

One JSON object per line. ``log_format_options`` name the timestamp:
``timestamp_field`` (a top-level key, removed from the document, as the seed did) and
``timestamp_format`` (``timeUnixMilliseconds``, ``timeISO8601`` or
``time:<Go layout>``). Every other key is kept as decoded; integers stay integers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, final

import msgspec

from s3lb.formats._base import Document, LogFormat, ParseError
from s3lb.formats._time import timestamp_parser
from s3lb.formats.mappings import (
    EPOCH_OR_DATE,
    INTEGER,
    IP,
    KEYWORD,
    LONG,
    LONG_KEYWORD,
    NOT_INDEXED,
)

__all__ = ["FORMAT", "WAF_FORMAT", "JsonParser", "decode_object", "validate_options"]

_decoder = msgspec.json.Decoder()
_OPTIONS = ("timestamp_field", "timestamp_format")


def decode_object(raw: bytes) -> dict[str, Any] | None:
    """Decode one JSON object; ``None`` for a blank line.

    Invalid UTF-8 is replaced rather than fatal.

    Raises:
        ParseError: not JSON, or not an object.
    """
    try:
        value = _decoder.decode(raw)
    except RecursionError:  # "[[[[…" nested beyond msgspec's depth limit
        raise ParseError("JSON nested too deeply to decode") from None
    except (UnicodeDecodeError, msgspec.DecodeError) as exc:
        # msgspec insists on valid UTF-8 (older versions raise UnicodeDecodeError, newer
        # ones DecodeError): retry with the bad bytes replaced.
        if not raw.strip():
            return None
        try:
            raw.decode()
        except UnicodeDecodeError:
            try:
                value = _decoder.decode(raw.decode("utf-8", "replace"))
            except msgspec.DecodeError as again:
                raise ParseError(f"invalid JSON: {again}") from None
        else:
            raise ParseError(f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ParseError(f"a JSON record must be an object, got {type(value).__name__}")
    return value


@final
class JsonParser:
    """Parses JSON lines, taking ``@timestamp`` from one top-level key."""

    __slots__ = ("_convert", "_field", "_keep")

    def __init__(self, field: str, convert: Callable[[object], str], keep: bool = False) -> None:
        self._field = field
        self._convert = convert
        self._keep = keep

    def parse(self, raw: bytes) -> Document | None:
        """Return the document for one JSON line (``None`` for a blank line)."""
        doc = decode_object(raw)
        if doc is None:
            return None
        try:
            value = doc[self._field] if self._keep else doc.pop(self._field)
        except KeyError:
            raise ParseError(f"timestamp field {self._field!r} not found") from None
        doc["@timestamp"] = self._convert(value)
        return doc


def validate_options(options: Mapping[str, Any]) -> None:
    """Check json's ``log_format_options``.

    Raises:
        ValueError: ``timestamp_field`` or ``timestamp_format`` is missing or invalid,
            or an unknown option is given.
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(
            f"log_format json: unknown log_format_options {unknown}; expected {list(_OPTIONS)}"
        )
    field = options.get("timestamp_field")
    if not isinstance(field, str) or not field:
        raise ValueError(
            "log_format json needs log_format_options.timestamp_field: the key that "
            "holds each record's time"
        )
    spec = options.get("timestamp_format")
    if not isinstance(spec, str) or not spec:
        raise ValueError(
            "log_format json needs log_format_options.timestamp_format: "
            "timeUnixMilliseconds, timeISO8601 or time:<Go layout>"
        )
    timestamp_parser(spec)  # raises ValueError with the supported list


def _new_parser(options: Mapping[str, Any]) -> JsonParser:
    validate_options(options)
    return JsonParser(options["timestamp_field"], timestamp_parser(options["timestamp_format"]))


FORMAT = LogFormat(
    name="json",
    new_parser=_new_parser,
    description="JSON lines; log_format_options timestamp_field and timestamp_format",
    validate_options=validate_options,
)


def _new_waf_parser(options: Mapping[str, Any]) -> JsonParser:
    return JsonParser("timestamp", timestamp_parser("timeUnixMilliseconds"))


#: AWS WAF logs: json with ``timestamp`` in epoch milliseconds (the seed's definition).
#: Index mappings of the fields this format writes (dotted paths for nested objects).
WAF_MAPPINGS: dict[str, dict[str, Any]] = {
    "formatVersion": INTEGER,
    "webaclId": KEYWORD,
    "terminatingRuleId": KEYWORD,
    "terminatingRuleType": KEYWORD,
    "action": KEYWORD,
    "httpSourceName": KEYWORD,
    "httpSourceId": KEYWORD,
    "httpRequest.clientIp": IP,
    "httpRequest.country": KEYWORD,
    "httpRequest.uri": LONG_KEYWORD,
    "httpRequest.args": LONG_KEYWORD,
    "httpRequest.httpVersion": KEYWORD,
    "httpRequest.httpMethod": KEYWORD,
    "httpRequest.requestId": KEYWORD,
    "httpRequest.scheme": KEYWORD,
    "httpRequest.host": KEYWORD,
    "httpRequest.headers.name": KEYWORD,
    "httpRequest.headers.value": LONG_KEYWORD,
    "labels.name": KEYWORD,
    "responseCodeSent": INTEGER,
    "requestBodySize": LONG,
    "requestBodySizeInspectedByWAF": LONG,
    "ja3Fingerprint": KEYWORD,
    "ja4Fingerprint": KEYWORD,
    "captchaResponse.responseCode": INTEGER,
    "captchaResponse.solveTimestamp": EPOCH_OR_DATE,
    "captchaResponse.failureReason": KEYWORD,
    "challengeResponse.responseCode": INTEGER,
    "challengeResponse.solveTimestamp": EPOCH_OR_DATE,
    "challengeResponse.failureReason": KEYWORD,
    # Rule match details differ in shape per rule type.
    "terminatingRuleMatchDetails": NOT_INDEXED,
    "ruleGroupList": NOT_INDEXED,
    "nonTerminatingMatchingRules": NOT_INDEXED,
    "rateBasedRuleList": NOT_INDEXED,
}


WAF_FORMAT = LogFormat(
    name="waf",
    fields=WAF_MAPPINGS,
    new_parser=_new_waf_parser,
    description="AWS WAF web ACL logs (JSON lines, timestamp in epoch ms)",
)
