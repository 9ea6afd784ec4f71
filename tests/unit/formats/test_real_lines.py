"""The corpus of published log lines (tests/data/real) through ``s3lb parse``, the whole
CLI: every line AWS or a user published gives a document, and the fields of issue #14
come out right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.paths import DATA

REAL = DATA / "real"
NAT = next(REAL.glob("vpcflow_nat_gateway_*.log"))
TGW = next(REAL.glob("tgw_flow_*.log"))
ALB = REAL / "alb_aws_docs_and_issues.log"


def fmt_of(path: Path) -> str:
    for prefix, fmt in (("alb", "alb"), ("clb", "elb"), ("nlb", "nlb"), ("waf", "waf")):
        if path.name.startswith(prefix):
            return fmt
    for prefix, fmt in (("cloudfront", "cloudfront"), ("s3access", "s3access")):
        if path.name.startswith(prefix):
            return fmt
    return "vpcflow"


CORPUS = sorted(p for p in REAL.iterdir() if p.suffix == ".log")


def parse(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "s3lb", "parse", *args], capture_output=True, timeout=60
    )


def documents(*args: str) -> list[dict[str, Any]]:
    result = parse(*args)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    return [json.loads(line) for line in result.stdout.splitlines()]


def records(path: Path) -> int:
    """Lines that are log records (not blank, not a header or # comment)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    first = lines[0].split()
    headers = 1 if fmt_of(path) == "vpcflow" and not first[0][0].isdigit() else 0
    return len([line for line in lines[headers:] if not line.startswith("#")])


def test_the_corpus_covers_every_variant_of_the_issue() -> None:
    names = {p.name.split("_fl-")[0] for p in CORPUS}
    assert {"nlb_v1.0.log", "nlb_v2.0.log", "vpcflow_nat_gateway", "tgw_flow"} <= names
    assert {fmt_of(p) for p in CORPUS} >= {"alb", "elb", "nlb", "cloudfront", "s3access", "waf"}
    assert (REAL / "README.md").read_text().count("| `") >= len(CORPUS)


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_every_published_line_gives_a_document(path: Path) -> None:
    docs = documents("-f", fmt_of(path), str(path))
    assert len(docs) == records(path)
    assert all(d["@timestamp"].endswith("Z") for d in docs)


@pytest.mark.parametrize(
    "path",
    [p for p in CORPUS if fmt_of(p) == "vpcflow"],
    ids=[p.name for p in CORPUS if fmt_of(p) == "vpcflow"],
)
def test_auto_recognises_a_whole_vpc_object_from_its_content(path: Path) -> None:
    """A key that is not AWS's layout (a copy, a custom prefix): the header of a real
    multi-line object tells the format."""
    docs = documents("--key", "copied/flow.log", str(path))
    assert len(docs) == records(path)
    assert all("srcaddr" in d or d.get("log_status") in ("NODATA", "SKIPDATA") for d in docs)


def test_nlb_version_1_0_lines_parse_without_the_alpn_fields() -> None:
    (doc,) = documents("-f", "nlb", str(REAL / "nlb_v1.0.log"))
    assert doc["version"] == "1.0"
    assert doc["@timestamp"] == "2018-12-20T02:59:40.000Z"
    assert doc["connection_time"] == 5
    assert doc["tls_protocol_version"] == "tlsv12"
    assert (
        doc["domain_name"] == "my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com"
    )
    assert not {"alpn_fe_protocol", "alpn_be_protocol", "tls_connection_creation_time"} & set(doc)


def test_nlb_version_2_0_lines_keep_alpn_and_creation_time() -> None:
    docs = documents("-f", "nlb", str(REAL / "nlb_v2.0.log"))
    assert docs[1]["alpn_client_preference_list"] == '"h2","http/1.1"'
    assert docs[2]["tls_connection_creation_time"] == "2020-04-01T08:51:20.000Z"


def test_vpc_records_without_start_or_end_take_the_key_stamp() -> None:
    docs = documents("-f", "vpcflow", str(NAT))
    assert len(docs) == 6
    assert {d["@timestamp"] for d in docs} == {"2018-06-20T16:20:00.000Z"}
    assert docs[0] == {
        "@timestamp": "2018-06-20T16:20:00.000Z",
        "interface_id": "eni-1235b8ca123456789",
        "srcaddr": "10.0.1.5",
        "dstaddr": "10.0.0.220",
        "pkt_srcaddr": "10.0.1.5",
        "pkt_dstaddr": "203.0.113.5",
    }


def test_without_a_key_stamp_they_take_the_objects_last_modified(tmp_path: Path) -> None:
    path = tmp_path / "nat-copy.log"
    path.write_bytes(NAT.read_bytes())
    os.utime(path, (1_700_000_000, 1_700_000_000))
    docs = documents("-f", "vpcflow", str(path))
    assert {d["@timestamp"] for d in docs} == {"2023-11-14T22:13:20.000Z"}


def test_transit_gateway_numbers_are_numbers() -> None:
    (doc,) = documents("-f", "vpcflow", str(TGW))
    for name, value in {
        "packets_lost_no_route": 0,
        "packets_lost_blackhole": 0,
        "packets_lost_mtu_exceeded": 0,
        "packets_lost_ttl_expired": 0,
        "tcp_flags": 2,
        "srcport": 54321,
        "dstport": 443,
        "protocol": 6,
        "packets": 150,
        "bytes": 12500,
        "version": 5,
    }.items():
        assert doc[name] == value and type(doc[name]) is int, name
    assert doc["resource_type"] == "TransitGatewayAttachment"
    assert "tgw_pair_attachment_id" not in doc  # "-" is omitted
    assert doc["@timestamp"] == "2023-11-07T00:00:00.000Z"


def test_a_headerless_line_with_more_values_than_the_format_is_dead_lettered(
    tmp_path: Path,
) -> None:
    lines = next(REAL.glob("vpcflow_default_*")).read_text().splitlines()[1:3]
    path = tmp_path / "headerless.log"
    path.write_text(lines[0] + "\n" + lines[1] + " 2 us-east-1\n")
    result = parse("-f", "vpcflow", str(path))
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr.decode() == (
        "line 2: parse_failed: vpcflow: 16 values for the 14 fields of the default format\n"
    )


def test_an_alb_line_missing_one_space_between_fields_is_dead_lettered(tmp_path: Path) -> None:
    line = ALB.read_text().splitlines()[1]  # the AWS docs' HTTPS entry
    assert " TLSv1.2 arn:aws:elasticloadbalancing" in line
    path = tmp_path / "shifted.log"
    path.write_text(line.replace(" TLSv1.2 arn:", " TLSv1.2arn:") + "\n" + line + "\n")
    result = parse("-f", "alb", str(path))
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 1
    err = result.stderr.decode()
    assert err.startswith("line 1: parse_failed: alb: fields do not line up"), err


def test_two_quoted_alb_fields_run_together_are_dead_lettered(tmp_path: Path) -> None:
    line = ALB.read_text().splitlines()[0]
    assert '"forward" "-"' in line
    path = tmp_path / "joined.log"
    path.write_text(line.replace('"forward" "-"', '"forward""-"', 1) + "\n")
    result = parse("-f", "alb", str(path))
    assert result.returncode == 1
    assert "fields do not line up" in result.stderr.decode()


def test_request_url_is_decoded_as_the_seed_did_and_the_raw_url_is_an_option() -> None:
    seed = documents("-f", "alb", str(ALB))[7]
    assert seed["request_url"].startswith("http://127.0.0.1:80/shell?cd /tmp;rm -rf *;")
    assert "request_url_raw" not in seed
    raw = documents("-f", "alb", "-o", "raw_request_url=true", str(ALB))[7]
    assert raw["request_url"] == seed["request_url"]
    assert raw["request_url_raw"].startswith("http://127.0.0.1:80/shell?cd+/tmp;rm+-rf+*;")


def test_an_unknown_alb_option_is_a_usage_error() -> None:
    result = parse("-f", "alb", "-o", "raw_url=1", str(ALB))
    assert result.returncode == 2
    assert b"raw_request_url" in result.stderr
