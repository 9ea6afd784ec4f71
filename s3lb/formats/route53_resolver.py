"""Route 53 Resolver query logs (``log_format: route53_resolver``), JSON lines.

Every key is kept as logged (``srcport`` stays a string, ``answers`` keeps its
capitalised keys); ``query_timestamp`` (ISO 8601, with or without milliseconds) also
becomes ``@timestamp``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from s3lb.formats._base import LogFormat, ParseError
from s3lb.formats._time import iso8601
from s3lb.formats.json_lines import JsonParser
from s3lb.formats.mappings import DATE, INTEGER, IP, KEYWORD

__all__ = ["FORMAT"]


def _query_time(value: object) -> str:
    if not isinstance(value, str):
        raise ParseError(f"route53_resolver: query_timestamp is not a string: {value!r}")
    return iso8601(value)


def _new_parser(options: Mapping[str, Any]) -> JsonParser:
    return JsonParser("query_timestamp", _query_time, keep=True)


#: Index mappings of the fields this format writes (dotted paths for nested objects).
MAPPINGS: dict[str, dict[str, Any]] = {
    "version": KEYWORD,
    "account_id": KEYWORD,
    "region": KEYWORD,
    "vpc_id": KEYWORD,
    "query_timestamp": DATE,
    "query_name": KEYWORD,
    "query_type": KEYWORD,
    "query_class": KEYWORD,
    "rcode": KEYWORD,
    "answers.Rdata": KEYWORD,
    "answers.Type": KEYWORD,
    "answers.Class": KEYWORD,
    "srcaddr": IP,
    "srcport": INTEGER,
    "transport": KEYWORD,
    "srcids.instance": KEYWORD,
    "srcids.resolver_endpoint": KEYWORD,
    "srcids.resolver_network_interface": KEYWORD,
    "firewall_rule_action": KEYWORD,
    "firewall_rule_group_id": KEYWORD,
    "firewall_domain_list_id": KEYWORD,
}


FORMAT = LogFormat(
    name="route53_resolver",
    fields=MAPPINGS,
    new_parser=_new_parser,
    description="Route 53 Resolver query logs (JSON lines)",
)
