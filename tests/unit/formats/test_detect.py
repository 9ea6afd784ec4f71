"""``auto``: the format from AWS's key layout, else from the first line."""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

import pytest

from s3lb.formats import FORMATS, detect_format, skip_reason, sniff_format
from tests.paths import SAMPLES as SAMPLES_DIR
from tests.unit.formats.conftest import read_lines

SAMPLES = SAMPLES_DIR


def _notification_keys() -> list[str]:
    """Every object key in the sample SQS messages, URL-decoded."""
    keys: list[str] = []
    for message in json.loads((SAMPLES / "s3_event_notifications.json").read_text()):
        body = json.loads(message["Body"])
        if body.get("Type") == "Notification":
            body = json.loads(body["Message"])
        if "detail" in body:
            keys.append(body["detail"]["object"]["key"])
        keys.extend(r["s3"]["object"]["key"] for r in body.get("Records", []))
    return [unquote_plus(k) for k in keys]


# What each log key in the notification samples is (keys not listed are no logs).
NOTIFICATION_LOGS = {
    "elasticloadbalancing": "alb",
    "/CloudTrail/": "cloudtrail",
    "WAFLogs": "waf",
    "vpcflowlogs": "vpcflow",
}


def test_every_log_key_of_the_notification_samples_is_detected() -> None:
    """ALB, org-trail CloudTrail, WAF and Hive-style VPC keys get their format; the
    digest is skipped; keys that are no logs give None."""
    keys = _notification_keys()
    assert len(keys) >= 20
    seen = set()
    for key in keys:
        expected = next((f for part, f in NOTIFICATION_LOGS.items() if part in key), None)
        if "CloudTrail-Digest" in key:
            assert skip_reason(key) == "cloudtrail-digest"
            assert detect_format(key) is None
            seen.add("digest")
            continue
        assert skip_reason(key) is None, key
        assert detect_format(key) == expected, key
        seen.add(expected)
    assert seen >= {"alb", "cloudtrail", "waf", "vpcflow", "digest", None}


@pytest.mark.parametrize(
    ("key", "fmt"),
    [
        (
            "prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/"
            "123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_"
            "20140215T2340Z_172.160.001.192_20sg8hgm.log.gz",
            "alb",
        ),
        (
            "prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2020/05/01/"
            "123456789012_elasticloadbalancing_us-east-2_net.my-loadbalancer.1234567890abcdef_"
            "20200501T0000Z_20sg8hgm.log.gz",
            "nlb",
        ),
        (
            "my-app/AWSLogs/123456789012/elasticloadbalancing/us-west-2/2014/02/15/"
            "123456789012_elasticloadbalancing_us-west-2_my-loadbalancer_20140215T2340Z_"
            "172.160.001.192_20sg8hgm.log",
            "elb",
        ),
        (
            "AWSLogs/o-abc123def4/111122223333/CloudTrail/us-east-2/2015/08/01/"
            "111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz",
            "cloudtrail",
        ),
        (
            "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2025/10/21/"
            "111122223333_CloudTrail-Insight_us-east-1_20251021T1500Z_abcdEFGH12345678.json.gz",
            "cloudtrail",
        ),
        (
            "AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/"
            "123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz",
            "vpcflow",
        ),
        (
            "AWSLogs/11111111111/WAFLogs/us-east-1/TEST-WEBACL/2021/10/28/19/50/"
            "11111111111_waflogs_us-east-1_TEST-WEBACL_20211028T1950Z_e0ca43b5.log.gz",
            "waf",
        ),
        (
            "AWSLogs/123456779121/vpcdnsquerylogs/vpc-0a1b2c3d/2021/05/11/"
            "vpc-0a1b2c3d_vpcdnsquerylogs_123456779121_20210511T0910Z_71584702.log.gz",
            "route53_resolver",
        ),
        (
            "AWSLogs/123456789012/network-firewall/alert/us-east-1/prod-fw/2025/10/21/15/"
            "123456789012_network-firewall_alert_us-east-1_prod-fw_202510211500_ab12cd34.log.gz",
            "network_firewall",
        ),
        ("example-prefix/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz", "cloudfront"),
        ("logs/2019-02-06-00-00-38-5A1B2C3D4E5F6A7B", "s3access"),
        ("uploads/2025/My Report (final)+v2.csv", None),
    ],
)
def test_documented_key_layouts_are_detected(key: str, fmt: str | None) -> None:
    """Keys as AWS documents them map to their format; other keys to None."""
    assert detect_format(key) == fmt
    if fmt is not None:
        assert fmt in FORMATS


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("bucket-prefix/AWSLogs/123456789012/ELBAccessLogTestFile", "elb-test-file"),
        ("AWSLogs/o-abc123def4/123456789012/ELBAccessLogTestFile", "elb-test-file"),
        (
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/"
            "111122223333_CloudTrail-Digest_us-east-2_trail_us-east-2_20150817T150131Z.json.gz",
            "cloudtrail-digest",
        ),
        (
            "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/10/04/conn_log_"
            "123456789012_elasticloadbalancing_us-east-1_app.my-lb.1a2b3c_20241004T1705Z_"
            "10.0.0.1_abcd1234.log.gz",
            "alb-connection-log",
        ),
        (
            "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/"
            "year=2025/month=10/day=21/123456789012_vpcflowlogs_us-east-1_fl-0a1b2c3d_"
            "20251021T1455Z_fe123456.log.parquet",
            "vpcflow-parquet",
        ),
    ],
)
def test_keys_to_skip_have_a_reason(key: str, reason: str) -> None:
    """Skipped keys are counted under a reason and never get a format."""
    assert skip_reason(key) == reason
    assert detect_format(key) is None


@pytest.mark.parametrize(
    ("name", "fmt", "line"),
    [
        ("alb.log", "alb", 0),
        ("clb.log", "elb", 0),
        ("nlb.log", "nlb", 0),
        ("cloudfront.log", "cloudfront", 0),
        ("vpcflow_default_v2.log", "vpcflow", 0),
        ("vpcflow_custom_reordered.log", "vpcflow", 0),
        ("s3_access.log", "s3access", 0),
        ("waf.log", "waf", 0),
        ("route53_resolver.log", "route53_resolver", 0),
        ("network_firewall.log", "network_firewall", 0),
        ("cloudtrail.json", "cloudtrail", 0),
    ],
)
def test_first_line_sniffing(name: str, fmt: str, line: int) -> None:
    """The fallback for unknown keys recognises each sample by its first line."""
    first = read_lines(SAMPLES_DIR / name)[line]
    assert sniff_format(first[:4096]) == fmt


def test_sniffing_unknown_content_gives_none() -> None:
    """Anything else is left to the configured log_format."""
    assert sniff_format(b"hello world") is None
    assert sniff_format(b'{"some": "json"}') is None
    assert sniff_format(b"") is None
