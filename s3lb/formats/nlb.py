"""Network Load Balancer access logs (``log_format: nlb``), TLS listeners only.

Space-separated and never quoted as a whole: ``alpn_client_preference_list`` holds
literal quotes (``"h2","http/1.1"``) and is kept as logged. Times carry no zone (UTC);
durations are integer milliseconds. Every published version is accepted: ``1.0``
(18 fields, through ``domain_name``), ``2.0`` (21 fields with the ALPN fields, or 22
with ``tls_connection_creation_time``); absent fields are left out, extra trailing
tokens are dropped. ``-`` is omitted everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, final

from s3lb.formats._base import Document, LogFormat, ParseError
from s3lb.formats._fields import INT64, decode_line, split_host_port, to_int, url_decode
from s3lb.formats._time import iso_utc_naive
from s3lb.formats.mappings import DATE, INTEGER, IP, KEYWORD, LONG

__all__ = ["FORMAT", "NlbParser"]

#: Fields every line of a version has; versions not listed (later ones) need 21.
MIN_FIELDS_BY_VERSION = {"1.0": 18, "2.0": 21}

# Index → (name, kind); kinds: s string, i int64, u URL-encoded string, t timestamp.
_FIELDS: tuple[tuple[int, str, str], ...] = (
    (0, "type", "s"),
    (1, "version", "s"),
    (3, "elb", "s"),
    (4, "listener", "s"),
    (7, "connection_time", "i"),
    (8, "tls_handshake_time", "i"),
    (9, "received_bytes", "i"),
    (10, "sent_bytes", "i"),
    (11, "incoming_tls_alert", "i"),
    (12, "chosen_cert_arn", "s"),
    (13, "chosen_cert_serial", "s"),
    (14, "tls_cipher", "s"),
    (15, "tls_protocol_version", "s"),
    (16, "tls_named_group", "s"),
    (17, "domain_name", "u"),
    (18, "alpn_fe_protocol", "s"),
    (19, "alpn_be_protocol", "s"),
    (20, "alpn_client_preference_list", "u"),
    (21, "tls_connection_creation_time", "t"),
)


@final
class NlbParser:
    """Parses NLB access log lines. Stateless."""

    __slots__ = ()

    def parse(self, raw: bytes) -> Document | None:
        """Return the document for one NLB line (``None`` for a blank line)."""
        line = decode_line(raw)
        t = line.split()
        n = len(t)
        if not t:
            return None
        version = t[1] if n > 1 else ""
        need = MIN_FIELDS_BY_VERSION.get(version, 21)
        if n < need:
            raise ParseError(
                f"nlb: expected at least {need} fields for version {version!r}, got {n}"
            )
        doc: dict[str, Any] = {"@timestamp": iso_utc_naive(t[2])}
        doc["client_ip"], doc["client_port"] = split_host_port(t[5], "client")
        doc["destination_ip"], doc["destination_port"] = split_host_port(t[6], "destination")
        for i, name, kind in _FIELDS:
            if i >= n:
                break
            value = t[i]
            if value == "-":
                continue
            if kind == "s":
                doc[name] = value
            elif kind == "i":
                doc[name] = to_int(value, name, INT64)
            elif kind == "u":
                doc[name] = url_decode(value)
            else:
                doc[name] = iso_utc_naive(value)
        return doc


def _new_parser(options: Mapping[str, Any]) -> NlbParser:
    return NlbParser()


#: Index mappings of the fields this format writes (dotted paths for nested objects).
MAPPINGS: dict[str, dict[str, Any]] = {
    "type": KEYWORD,
    "version": KEYWORD,
    "elb": KEYWORD,
    "listener": KEYWORD,
    "client_ip": IP,
    "client_port": INTEGER,
    "destination_ip": IP,
    "destination_port": INTEGER,
    "connection_time": LONG,
    "tls_handshake_time": LONG,
    "received_bytes": LONG,
    "sent_bytes": LONG,
    "incoming_tls_alert": INTEGER,
    "chosen_cert_arn": KEYWORD,
    "chosen_cert_serial": KEYWORD,
    "tls_cipher": KEYWORD,
    "tls_protocol_version": KEYWORD,
    "tls_named_group": KEYWORD,
    "domain_name": KEYWORD,
    "alpn_fe_protocol": KEYWORD,
    "alpn_be_protocol": KEYWORD,
    "alpn_client_preference_list": KEYWORD,
    "tls_connection_creation_time": DATE,
}


FORMAT = LogFormat(
    name="nlb",
    fields=MAPPINGS,
    new_parser=_new_parser,
    description="Network Load Balancer access logs (TLS listeners)",
)
