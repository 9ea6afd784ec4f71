"""Index templates: every format's sample documents fit its mappings (IP strings are
``ip``, numbers numeric, dates dates), and all formats compose into one index."""

from __future__ import annotations

import datetime as dt
import fnmatch
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3lb.errors import ConfigError
from s3lb.formats import FORMATS
from s3lb.pipeline.parsing import ObjectParser, ParseFailure
from s3lb.sinks.elasticsearch import templates
from tests.paths import DATA
from tests.paths import SAMPLES as SAMPLES_DIR
from tests.paths import SEED as SEED_DIR

FORMAT_SAMPLES = SAMPLES_DIR
SEED_SAMPLES = SEED_DIR
SAMPLES: dict[str, list[Path]] = {
    "alb": [FORMAT_SAMPLES / "alb.log", SEED_SAMPLES / "alb.log", SEED_SAMPLES / "alb-unusual.log"],
    "elb": [FORMAT_SAMPLES / "clb.log", SEED_SAMPLES / "elb.log"],
    "nlb": [FORMAT_SAMPLES / "nlb.log", *sorted((DATA / "real").glob("nlb_*.log"))],
    "cloudfront": [FORMAT_SAMPLES / "cloudfront.log", SEED_SAMPLES / "cloudfront.log"],
    "waf": [FORMAT_SAMPLES / "waf.log", SEED_SAMPLES / "waf.log"],
    "cloudtrail": [FORMAT_SAMPLES / "cloudtrail.json"],
    # The real corpus adds Transit Gateway fields and formats without start/end.
    "vpcflow": [
        *sorted(FORMAT_SAMPLES.glob("vpcflow_*.log")),
        *sorted((DATA / "real").glob("*_fl-*.log")),
    ],
    "s3access": [FORMAT_SAMPLES / "s3_access.log"],
    "route53_resolver": [FORMAT_SAMPLES / "route53_resolver.log"],
    "network_firewall": [FORMAT_SAMPLES / "network_firewall.log"],
}
#: Strings that may hold an IP address and are rightly not ``ip`` fields.
NOT_IP = {"answers.Rdata", "x_forwarded_for", "httpRequest.headers.value"}
INT32 = 2**31
INT64 = 2**63


def documents(fmt: str, options: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    for path in SAMPLES[fmt]:
        parser = ObjectParser(fmt, path.name, options=options)
        cutter = parser.new_cutter()
        for record in [*cutter.feed(path.read_bytes()), *cutter.close()]:
            doc = parser.parse(record)
            if isinstance(doc, dict):
                yield doc
            else:
                assert doc is None or isinstance(doc, ParseFailure)


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item, path)
    elif value is not None:
        yield path, value


def mapping_of(fmt: str, path: str, value: Any) -> dict[str, Any] | None:
    """The mapping a leaf gets in an index made from the templates; None: not indexed."""
    base = templates.BASE_TEMPLATE["template"]["mappings"]
    props = {**base["properties"], **templates.properties(templates.FORMAT_FIELDS[fmt])}
    node: dict[str, Any] | None = None
    level = props
    for part in path.split("."):
        node = level.get(part)
        if node is None:
            break
        if node.get("enabled") is False:
            return None
        level = node.get("properties", {})
    if node is not None and "type" in node and node["type"] != "object":
        return node
    name = path.rsplit(".", 1)[-1]
    for rule in base["dynamic_templates"]:
        ((_, spec),) = rule.items()
        kind = spec.get("match_mapping_type")
        matches_type = (
            kind is None
            or (kind == "string" and isinstance(value, str))
            or (kind == "double" and isinstance(value, float))
        )
        if matches_type and fnmatch.fnmatchcase(name, spec.get("match", "*")):
            return spec["mapping"]
    if isinstance(value, bool):
        return {"type": "boolean"}
    return {"type": "long"} if isinstance(value, int) else {"type": "double"}


def fits(mapping: dict[str, Any], value: Any) -> bool:
    kind = mapping["type"]
    if kind == "ip":
        return isinstance(value, str) and (_is_ip(value) or mapping.get("ignore_malformed"))
    if kind in ("integer", "long"):
        bound = INT32 if kind == "integer" else INT64
        number = int(value) if isinstance(value, str) and value.lstrip("-").isdigit() else value
        return type(number) is int and -bound <= number < bound
    if kind == "double":
        return type(value) in (int, float)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "date":
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return "epoch_second" in mapping.get("format", "")
        try:
            dt.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return False
        return True
    return kind == "keyword" and isinstance(value, str | int | float | bool)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_sample_documents_fit_their_format_mappings(fmt: str) -> None:
    if fmt not in FORMATS:
        pytest.skip(f"format {fmt} is not registered")
    seen = 0
    for doc in documents(fmt):
        for path, value in leaves(doc):
            mapping = mapping_of(fmt, path, value)
            if mapping is None:
                continue
            seen += 1
            assert fits(mapping, value), (path, value, mapping)
            if isinstance(value, str) and _is_ip(value) and path not in NOT_IP:
                assert mapping["type"] == "ip", (path, value)
    assert seen > 0


@pytest.mark.parametrize("fmt", ["alb", "elb"])
def test_the_raw_request_url_is_a_long_keyword(fmt: str) -> None:
    docs = list(documents(fmt, {"raw_request_url": True}))
    assert any("request_url_raw" in d for d in docs)
    for doc in docs:
        if "request_url_raw" in doc:
            mapping = mapping_of(fmt, "request_url_raw", doc["request_url_raw"])
            assert mapping == templates.FORMAT_FIELDS[fmt]["request_url"]


def test_every_field_a_vpc_or_transit_gateway_header_names_has_a_mapping() -> None:
    from s3lb.formats.vpcflow import KNOWN_FIELDS

    fields = templates.FORMAT_FIELDS["vpcflow"]
    assert {name.replace("-", "_") for name in KNOWN_FIELDS} <= set(fields)
    for name in ("packets_lost_no_route", "tcp_flags", "srcport", "bytes", "traffic_path"):
        assert fields[name]["type"] in ("integer", "long"), name


def test_formats_declare_their_own_mappings_and_aliases_share_them() -> None:
    for name, fmt in FORMATS.items():
        canonical = templates.known_format(name)
        assert canonical == (fmt.alias_of or name)
        assert templates.FORMAT_FIELDS[canonical] == dict(fmt.fields)
    assert "clb" not in templates.FORMAT_FIELDS


def test_every_registered_format_has_mappings() -> None:
    assert {name for name in FORMATS if templates.known_format(name) is None} == set()


def test_a_field_has_one_type_in_every_format_so_all_compose_into_one_index() -> None:
    types: dict[str, dict[str, Any]] = {}
    for fmt, fields in templates.FORMAT_FIELDS.items():
        for path, mapping in fields.items():
            assert types.setdefault(path, mapping) == mapping, (fmt, path)


def test_the_index_template_is_composed_of_the_base_and_each_format() -> None:
    body = templates.index_template("alb-*", ["alb", "elb"], data_stream=False)
    assert body["index_patterns"] == ["alb-*"]
    assert body["composed_of"] == ["s3lb-base", "s3lb-format-alb", "s3lb-format-elb"]
    assert "data_stream" not in body
    assert templates.index_template("logs-alb", ["alb"], data_stream=True)["data_stream"] == {}
    nested = templates.format_component("waf")["template"]["mappings"]["properties"]
    assert nested["httpRequest"]["properties"]["clientIp"]["type"] == "ip"


@pytest.mark.parametrize(
    ("index", "pattern", "name"),
    [
        ("alb-%{+yyyy.MM.dd}", "alb-*", "s3lb-alb"),
        ("s3lb-%{+yyyy.MM.dd}", "s3lb-*", "s3lb"),
        ("logs-%{[fields.app]}-%{+yyyy.MM}", "logs-*-*", "s3lb-logs"),
        ("Logs-ALB", "logs-alb", "s3lb-logs-alb"),
    ],
)
def test_index_patterns_and_template_names_come_from_the_index_setting(
    index: str, pattern: str, name: str
) -> None:
    assert templates.index_pattern(index) == pattern
    assert templates.template_name(pattern) == name


def test_a_pattern_matching_every_index_is_refused() -> None:
    with pytest.raises(ConfigError):
        templates.index_pattern("%{[fields.kind]}-%{+yyyy.MM.dd}")
