"""Choosing a format from an object key (the layout AWS writes) or from a first line.

Keys are matched **after URL-decoding** (S3 notifications form-encode them). The
patterns follow the routing table of shared/formats/README.md; an optional
``o-xxxxxxxxxx/`` organization level is allowed before the account id.
"""

from __future__ import annotations

import re

from s3lb.formats.vpcflow import is_header

__all__ = ["SKIP_KEY_REASONS", "detect_format", "skip_reason", "sniff_format"]

_ACCT = r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?\d+/"
_ELB_DIR = r"/elasticloadbalancing/[a-z0-9-]+/\d{4}/\d{2}/\d{2}/"

#: Why a key is skipped, by reason name; each reason is a counter label.
SKIP_KEY_REASONS: dict[str, re.Pattern[str]] = {
    # Written when ELB logging is enabled: plain text, not a log.
    "elb-test-file": re.compile(_ACCT + r"ELBAccessLogTestFile$"),
    # Integrity digests: JSON without Records.
    "cloudtrail-digest": re.compile(_ACCT + r"CloudTrail-Digest/"),
    # ALB connection logs share the ELB folder but have another format (not parsed).
    "alb-connection-log": re.compile(_ELB_DIR + r"conn_log[._]\d+_elasticloadbalancing_"),
    # VPC Flow Logs in Parquet: a binary columnar file, not lines.
    "vpcflow-parquet": re.compile(
        r"(?:/vpcflowlogs/|aws-service=vpcflowlogs/).*_vpcflowlogs_.*\.parquet$"
    ),
}

# Ordered: the first match wins. CloudTrail Insights use the same envelope as
# CloudTrail, so they are parsed as cloudtrail (their eventType tells them apart).
_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "cloudtrail",
        re.compile(
            _ACCT + r"CloudTrail(?:-Insight)?/[a-z0-9-]+/\d{4}/\d{2}/\d{2}/"
            r"\d+_CloudTrail(?:-Insight)?_[a-z0-9-]+_\d{8}T\d{4}Z_[A-Za-z0-9]+\.json(?:\.gz)?$"
        ),
    ),
    (
        "alb",
        re.compile(
            _ELB_DIR + r"\d+_elasticloadbalancing_[a-z0-9-]+_app\.[^_/]+_\d{8}T\d{4}Z_"
            r"[0-9a-fA-F.:]+_[a-z0-9]+\.log(?:\.gz)?$"
        ),
    ),
    (
        "nlb",
        re.compile(
            _ELB_DIR + r"\d+_elasticloadbalancing_[a-z0-9-]+_net\.[^_/]+_\d{8}T\d{4}Z_"
            r"[a-z0-9]+\.log(?:\.gz)?$"
        ),
    ),
    (
        "elb",
        re.compile(
            _ELB_DIR + r"\d+_elasticloadbalancing_[a-z0-9-]+_[A-Za-z0-9-]+_\d{8}T\d{4}Z_"
            r"[0-9.]+_[a-z0-9]+\.log(?:\.gz)?$"
        ),
    ),
    (
        "vpcflow",
        re.compile(
            r"(?:/vpcflowlogs/|aws-service=vpcflowlogs/).*_vpcflowlogs_[a-z0-9-]+_fl-[0-9a-f]+_"
            r"\d{8}T\d{4}Z_[0-9a-f]+\.log\.gz$"
        ),
    ),
    (
        "waf",
        re.compile(
            _ACCT + r"WAFLogs/[^/]+/[^/]+/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}/\d+_waflogs_.*\.log\.gz$"
        ),
    ),
    (
        "route53_resolver",
        re.compile(_ACCT + r"vpcdnsquerylogs/vpc-[0-9a-f]+/\d{4}/\d{2}/\d{2}/.*\.log\.gz$"),
    ),
    ("network_firewall", re.compile(_ACCT + r"network-firewall/(?:alert|flow|tls)/")),
    (
        "cloudfront",
        re.compile(r"(?:^|/)[A-Z0-9]{10,16}\.\d{4}-\d{2}-\d{2}-\d{2}\.[A-Za-z0-9]+\.gz$"),
    ),
    ("s3access", re.compile(r"(?:^|/)\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9A-F]{16}$")),
)


def skip_reason(key: str) -> str | None:
    """The reason to skip the object at (decoded) ``key``, or ``None`` to read it."""
    for reason, pattern in SKIP_KEY_REASONS.items():
        if pattern.search(key):
            return reason
    return None


def detect_format(key: str) -> str | None:
    """The format name for the (decoded) ``key`` from AWS's layout, or ``None``.

    Keys to skip (see :func:`skip_reason`) give ``None``; check that first.
    """
    if skip_reason(key) is not None:
        return None
    for name, pattern in _ROUTES:
        if pattern.search(key):
            return name
    return None


_S3_ACCESS_LINE = re.compile(r"^[0-9a-f]{64} \S+ \[\d{2}/[A-Z][a-z]{2}/\d{4}:")
_ALB_LINE = re.compile(r"^(?:https?|h2|grpcs|wss?) \d{4}-\d{2}-\d{2}T[0-9:.]+Z \S+ ")
_ELB_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T[0-9:.]+Z \S+ \S+:\d+ ")
_NLB_LINE = re.compile(r"^tls \d+\.\d+ \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2} ")
# A headerless record of the default VPC format: version, account (or "unknown"), ENI.
_VPC_DEFAULT_LINE = re.compile(r"^\d+ (?:\d{12}|unknown) eni-[0-9a-f]+ ")
#: How many complete lines of the head are looked at.
_SNIFF_LINES = 8


def sniff_format(head: bytes) -> str | None:
    """Guess the format from the first bytes of an object (up to 4 KiB), or ``None``.

    A fallback for keys :func:`detect_format` does not know (Firehose, custom
    prefixes, copies). The head is read line by line: the first non-blank line
    decides, except that a VPC flow header may follow blank lines. JSON lines are told
    apart by their keys; CloudTrail by ``{"Records"``.
    """
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:4096].decode("utf-8", "replace")
    if text.startswith("#Version:") or text.startswith("#Fields:"):
        return "cloudfront"
    if text.startswith("{"):
        if text.replace(" ", "").startswith('{"Records":'):
            return "cloudtrail"
        return _sniff_json(text.split("\n", 1)[0] if "\n" in text else text)
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines.pop()  # cut by the 4 KiB limit: not a whole line
    for line in lines[:_SNIFF_LINES]:
        if line.strip():
            return _sniff_line(line.rstrip("\r"))
    return None


def _sniff_json(line: str) -> str | None:
    if '"webaclId"' in line and '"httpRequest"' in line:
        return "waf"
    if '"query_name"' in line and '"query_timestamp"' in line:
        return "route53_resolver"
    if '"firewall_name"' in line and '"event"' in line:
        return "network_firewall"
    return None


def _sniff_line(line: str) -> str | None:
    tokens = line.split()
    if len(tokens) > 1 and is_header(tokens):
        return "vpcflow"
    if _ALB_LINE.match(line):
        return "alb"
    if _NLB_LINE.match(line):
        return "nlb"
    if _ELB_LINE.match(line):
        return "elb"
    if _S3_ACCESS_LINE.match(line):
        return "s3access"
    if _VPC_DEFAULT_LINE.match(line):
        return "vpcflow"
    return None
