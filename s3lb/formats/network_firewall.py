"""AWS Network Firewall logs (``log_format: network_firewall``), JSON lines.

Each line wraps a Suricata EVE event: ``{"firewall_name", "availability_zone",
"event_timestamp", "event": {...}}``. Every key is kept; ``@timestamp`` comes from
``event.timestamp`` (``2020-09-25T23:01:05.598481+0000``), else from
``event_timestamp`` (epoch seconds as a string). ``event.flow_id`` can exceed 2^53:
it stays an integer, which the JSON encoder writes exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, final

from s3lb.formats._base import Document, LogFormat, ParseError
from s3lb.formats._time import epoch_seconds, iso8601
from s3lb.formats.json_lines import decode_object
from s3lb.formats.mappings import EPOCH_OR_DATE, INTEGER, IP, KEYWORD, LONG, LONG_KEYWORD

__all__ = ["FORMAT", "NetworkFirewallParser"]


@final
class NetworkFirewallParser:
    """Parses Network Firewall log lines. Stateless."""

    __slots__ = ()

    def parse(self, raw: bytes) -> Document | None:
        """Return the document for one line (``None`` for a blank line)."""
        doc = decode_object(raw)
        if doc is None:
            return None
        event = doc.get("event")
        stamp = event.get("timestamp") if isinstance(event, dict) else None
        if isinstance(stamp, str):
            doc["@timestamp"] = iso8601(stamp)
        elif "event_timestamp" in doc:
            doc["@timestamp"] = epoch_seconds(doc["event_timestamp"])
        else:
            raise ParseError("network_firewall: no event.timestamp nor event_timestamp")
        return doc


def _new_parser(options: Mapping[str, Any]) -> NetworkFirewallParser:
    return NetworkFirewallParser()


#: Index mappings of the fields this format writes (dotted paths for nested objects).
MAPPINGS: dict[str, dict[str, Any]] = {
    "firewall_name": KEYWORD,
    "availability_zone": KEYWORD,
    "event_timestamp": EPOCH_OR_DATE,
    # Suricata's own time format ("…+0000"); @timestamp carries the parsed time.
    "event.timestamp": KEYWORD,
    "event.flow_id": LONG,
    "event.event_type": KEYWORD,
    "event.src_ip": IP,
    "event.src_port": INTEGER,
    "event.dest_ip": IP,
    "event.dest_port": INTEGER,
    "event.proto": KEYWORD,
    "event.app_proto": KEYWORD,
    "event.alert.action": KEYWORD,
    "event.alert.signature_id": LONG,
    "event.alert.rev": INTEGER,
    "event.alert.signature": LONG_KEYWORD,
    "event.alert.category": KEYWORD,
    "event.alert.severity": INTEGER,
    "event.netflow.pkts": LONG,
    "event.netflow.bytes": LONG,
    "event.netflow.start": KEYWORD,
    "event.netflow.end": KEYWORD,
    "event.netflow.age": LONG,
    "event.netflow.min_ttl": INTEGER,
    "event.netflow.max_ttl": INTEGER,
    "event.tcp.tcp_flags": KEYWORD,
    "event.tls.sni": KEYWORD,
    "event.tls.version": KEYWORD,
    "event.tls.subject": LONG_KEYWORD,
    "event.tls.issuerdn": LONG_KEYWORD,
    "event.tls.serial": KEYWORD,
    "event.tls.fingerprint": KEYWORD,
    "event.tls.notbefore": KEYWORD,
    "event.tls.notafter": KEYWORD,
    "event.http.hostname": KEYWORD,
    "event.http.url": LONG_KEYWORD,
    "event.http.http_method": KEYWORD,
    "event.http.length": LONG,
}


FORMAT = LogFormat(
    name="network_firewall",
    fields=MAPPINGS,
    new_parser=_new_parser,
    description="AWS Network Firewall alert/flow/tls logs (JSON lines, Suricata EVE)",
)
