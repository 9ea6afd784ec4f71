"""Index templates for ``s3lb setup``: real mappings per log format.

Composable templates, as ``filebeat setup`` installs them:

- the component template ``s3lb-base``: ``@timestamp`` as ``date``, the fields of
  ``key_regex_fields`` and ``fields``, and dynamic rules for what no format names
  (strings → ``keyword``; ``*_ip`` and ``*addr`` strings → ``ip``; decimals → ``double``);
  date detection is off, so a string never becomes a date by accident;
- one component template per format, ``s3lb-format-<name>``: IP fields ``ip``, numbers
  numeric (ports and status codes ``integer``, byte counts ``long``, times ``double``),
  other timestamps ``date``, identifiers ``keyword``; free-form CloudTrail payloads
  (``requestParameters``…) are kept in ``_source`` but not indexed, as their shapes
  differ per API;
- one index template per output index pattern, composed of the base and of the
  formats that write there (all of them for ``log_format: auto``), with
  ``data_stream: {}`` in data stream mode.

IP fields accept malformed values without rejecting the document (``ignore_malformed``):
CloudTrail's ``sourceIPAddress`` is sometimes a service name. A field has the same type
in every format that has it, so any set of formats composes into one index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from s3lb import __version__
from s3lb.errors import ConfigError
from s3lb.formats import FORMATS
from s3lb.formats.mappings import DATE, DOUBLE, IP, KEYWORD, LONG, LONG_KEYWORD
from s3lb.sinks.elasticsearch.fields import FORMAT_FIELDS

__all__ = [
    "BASE_TEMPLATE",
    "FORMAT_FIELDS",
    "component_name",
    "dead_letter_template",
    "format_component",
    "index_pattern",
    "index_template",
    "known_format",
    "template_name",
]

_META = {"managed_by": "s3lb", "version": __version__}

#: Other names of the same format.
BASE_TEMPLATE: dict[str, Any] = {
    "template": {
        "mappings": {
            "date_detection": False,
            "dynamic_templates": [
                {"ip_fields": {"match_mapping_type": "string", "match": "*_ip", "mapping": IP}},
                {"addr_fields": {"match_mapping_type": "string", "match": "*addr", "mapping": IP}},
                {"decimals": {"match_mapping_type": "double", "mapping": DOUBLE}},
                {"strings": {"match_mapping_type": "string", "mapping": KEYWORD}},
            ],
            "properties": {
                "@timestamp": DATE,
                "environment": KEYWORD,
                "application": KEYWORD,
            },
        }
    },
    "_meta": {**_META, "description": "s3lb: fields every format shares"},
}


def known_format(name: str) -> str | None:
    """The canonical name of format ``name`` when s3lb has mappings for it."""
    fmt = FORMATS.get(name)
    if fmt is not None and fmt.alias_of is not None:
        name = fmt.alias_of
    return name if name in FORMAT_FIELDS else None


def component_name(fmt: str) -> str:
    """The component template name of format ``fmt`` (``base`` for the shared one)."""
    return "s3lb-base" if fmt == "base" else f"s3lb-format-{fmt}"


def properties(fields: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Dotted leaf paths → nested ``properties`` mappings."""
    root: dict[str, Any] = {}
    for path, mapping in fields.items():
        node = root
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node[leaf] = dict(mapping)
    return root


def format_component(fmt: str) -> dict[str, Any]:
    """The component template body holding format ``fmt``'s mappings."""
    return {
        "template": {"mappings": {"properties": properties(FORMAT_FIELDS[fmt])}},
        "_meta": {**_META, "description": f"s3lb: fields of {fmt} logs"},
    }


def index_template(pattern: str, formats: Iterable[str], *, data_stream: bool) -> dict[str, Any]:
    """The index template on ``pattern`` composed of the base and ``formats``."""
    body: dict[str, Any] = {
        "index_patterns": [pattern],
        # Above the built-in logs-*-* data stream template of Elasticsearch (100).
        "priority": 200,
        "composed_of": [component_name("base")] + [component_name(f) for f in formats],
        "_meta": {**_META, "description": "s3lb: documents shipped from S3"},
    }
    if data_stream:
        body["data_stream"] = {}
    return body


def dead_letter_template(index: str) -> dict[str, Any]:
    """The index template of ``dead_letter_index``: entries are looked up by location
    and reason; the refused document is kept whole, unindexed."""
    unindexed_text = {"type": "text", "index": False}
    return {
        "index_patterns": [index],
        "priority": 200,
        "template": {
            "mappings": {
                "dynamic": False,
                "properties": {
                    "time": DATE,
                    "kind": KEYWORD,
                    "reason": {"type": "text", "fields": {"keyword": LONG_KEYWORD}},
                    "bucket": KEYWORD,
                    "key": LONG_KEYWORD,
                    "version": KEYWORD,
                    "position": LONG,
                    "offset": LONG,
                    "index": KEYWORD,
                    "id": KEYWORD,
                    "document": unindexed_text,
                    "raw": unindexed_text,
                },
            }
        },
        "_meta": {**_META, "description": "s3lb: documents the cluster rejected"},
    }


_FIELD_REF = re.compile(r"%\{[^}]*\}")


def index_pattern(index: str) -> str:
    """The wildcard pattern of the indices an ``index`` setting writes to:
    ``alb-%{+yyyy.MM.dd}`` → ``alb-*``.

    Raises:
        ConfigError: the pattern would start with ``*`` (it would match every index).
    """
    pattern = re.sub(r"\*+", "*", _FIELD_REF.sub("*", index)).lower()
    if pattern.startswith("*"):
        raise ConfigError(
            f"cannot derive a safe index pattern from {index!r}; give one with --index-pattern",
            "output.elasticsearch.index",
        )
    return pattern


def template_name(pattern: str) -> str:
    """``alb-*`` → ``s3lb-alb``; ``s3lb-*`` → ``s3lb``."""
    slug = re.sub(r"[^a-z0-9_]+", "-", pattern.replace("*", "")).strip("-_") or "default"
    return slug if slug == "s3lb" or slug.startswith("s3lb-") else f"s3lb-{slug}"
