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


FORMAT = LogFormat(
    name="network_firewall",
    new_parser=_new_parser,
    description="AWS Network Firewall alert/flow/tls logs (JSON lines, Suricata EVE)",
)
