"""Golden tests: every seed sample parses to the seed's full documents.

``expected-full.json`` (tests/data/seed) lists every field the seed emitted, with
its value; s3lb adds only the newer AWS fields documented in docs/formats.md, listed
here explicitly per event.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.paths import SEED as SEED_DIR
from tests.unit.formats.conftest import parse_lines, read_lines

SEED = SEED_DIR

# (section of expected-full.json, log_format, options)
SECTIONS = [
    ("alb", "alb", {}),
    ("alb_strange", "alb", {}),
    ("elb", "elb", {}),
    ("cloudfront", "cloudfront", {}),
    ("waf", "waf", {}),
    ("waf_eof", "waf", {}),
    # The seed's json parser with waf's options is the waf format.
    ("waf", "json", {"timestamp_field": "timestamp", "timestamp_format": "timeUnixMilliseconds"}),
]

# Fields s3lb adds that the seed never emitted: (section, file line) → fields.
ADDITIONS: dict[tuple[str, int], dict[str, Any]] = {
    ("alb", 2): {
        "domain_name": "www.example.com",
        "chosen_cert_arn": (
            "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"
        ),
    },
    ("alb_strange", 1): {"request_creation_time": "2018-08-19T15:14:55.205Z"},
}


def _expected() -> dict[str, Any]:
    return json.loads((SEED / "expected-full.json").read_text())


def _cases() -> list[tuple[str, str, dict[str, str]]]:
    return [pytest.param(s, f, o, id=f"{s}-{f}") for s, f, o in SECTIONS]


@pytest.mark.parametrize(("section", "fmt", "options"), _cases())
def test_seed_sample_parses_to_the_seed_documents(
    section: str, fmt: str, options: dict[str, str]
) -> None:
    """Every line of the sample gives the seed's full document, or nothing for headers."""
    spec = _expected()[section]
    events = {ev["file_line_number"]: ev for ev in spec["events"]}
    source = spec["events"][0]["source_file"]
    docs = parse_lines(fmt, read_lines(SEED_DIR / source), options)
    for number, doc in enumerate(docs, start=1):
        event = events.get(number)
        if event is None:
            assert doc is None, f"line {number} is a header and must give no document"
            continue
        if "asserted_by_go_test" in event:  # json sections list plain values
            want = dict(event["fields"])
        else:
            want = {name: field["value"] for name, field in event["fields"].items()}
        want["@timestamp"] = event["@timestamp_as_serialized_by_libbeat"]
        want.update(ADDITIONS.get((section, number), {}))
        assert doc == want, f"{source} line {number}"
        # Same JSON types too: 0.0 is a float, 200 an int (== would hide int vs float).
        for name, value in want.items():
            assert type(doc[name]) is type(value), f"{source} line {number}: {name}"
    assert len([d for d in docs if d is not None]) == len(events)


def test_alb_unusual_line_keeps_the_seed_dashes() -> None:
    """The seed emitted target_group_arn "-" and trace_id "-" on the unusual ALB line."""
    (doc,) = parse_lines("alb", read_lines(SEED / "alb-unusual.log"))
    assert doc["target_group_arn"] == "-"
    assert doc["trace_id"] == "-"
    for omitted in ("target_ip", "target_port", "request_processing_time", "ssl_cipher"):
        assert omitted not in doc


def test_elb_tcp_lines_keep_the_seed_request_quirk() -> None:
    """TCP/SSL listener lines ("- - - ") give verb "-", url "-" and proto "- "."""
    docs = parse_lines("elb", read_lines(SEED / "elb.log"))
    for doc in docs[2:]:
        assert (doc["request_verb"], doc["request_url"], doc["request_proto"]) == ("-", "-", "- ")
        assert "elb_status_code" not in doc and "backend_status_code" not in doc


def test_cloudfront_keeps_cookie_dash_and_decodes_user_agent() -> None:
    """Only the seed's listed fields drop "-"; URL-encoded fields are decoded."""
    docs = parse_lines("cloudfront", read_lines(SEED / "cloudfront.log"))
    assert docs[:2] == [None, None]
    assert docs[2]["cs_user_agent"] == "Mozilla/4.0 (compatible; MSIE 5.0b1; Mac_PowerPC)"
    assert "cs_uri_query" not in docs[2]


def test_waf_line_with_leading_tabs_parses() -> None:
    """Line 2 of waf.log starts with five tabs and a space."""
    docs = parse_lines("waf", read_lines(SEED / "waf.log"))
    assert docs[1]["@timestamp"] == "2019-03-23T17:04:53.035Z"
    assert "timestamp" not in docs[1]
