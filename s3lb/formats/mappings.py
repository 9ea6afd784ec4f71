"""Index mapping types for the fields a format declares (``LogFormat.fields``).

Pure data: each format module names the Elasticsearch/OpenSearch type of each field
it writes, and ``s3lb.sinks.elasticsearch.templates`` builds the index templates from them. A
field has the same mapping in every format that has it, so any set of formats
composes into one index.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BOOLEAN",
    "DATE",
    "DOUBLE",
    "EPOCH_OR_DATE",
    "INTEGER",
    "IP",
    "KEYWORD",
    "LONG",
    "LONG_KEYWORD",
    "NOT_INDEXED",
]

KEYWORD: dict[str, Any] = {"type": "keyword", "ignore_above": 1024}
#: URLs, user agents, cookies: long but still worth exact matches.
LONG_KEYWORD: dict[str, Any] = {"type": "keyword", "ignore_above": 8191}
#: Malformed values do not reject the document (CloudTrail's sourceIPAddress can be a
#: service name).
IP: dict[str, Any] = {"type": "ip", "ignore_malformed": True}
INTEGER: dict[str, Any] = {"type": "integer"}
LONG: dict[str, Any] = {"type": "long"}
DOUBLE: dict[str, Any] = {"type": "double"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
DATE: dict[str, Any] = {"type": "date"}
#: Epoch seconds as numbers (VPC flow ``start``/``end``) or strings, or ISO 8601.
EPOCH_OR_DATE: dict[str, Any] = {
    "type": "date",
    "format": "strict_date_optional_time||epoch_second",
}
#: Stored in ``_source``, not indexed: payloads whose shape varies per event.
NOT_INDEXED: dict[str, Any] = {"type": "object", "enabled": False}
