"""Log formats: one module per AWS log type, pure and synchronous.

The registry maps a ``log_format`` name to its :class:`LogFormat`; ``auto`` is not a
format but a choice made per object with :func:`detect_format` (from the key) and
:func:`sniff_format` (from the first line).
"""

from __future__ import annotations

from s3lb.formats import (
    alb,
    cloudfront,
    cloudtrail,
    elb,
    json_lines,
    network_firewall,
    nlb,
    route53_resolver,
    s3access,
    vpcflow,
    waf,
)
from s3lb.formats._base import Document as Document
from s3lb.formats._base import LogFormat as LogFormat
from s3lb.formats._base import ObjectInfo as ObjectInfo
from s3lb.formats._base import ParseError as ParseError
from s3lb.formats._base import RecordParser as RecordParser
from s3lb.formats._base import RecordSplitter as RecordSplitter
from s3lb.formats._detect import SKIP_KEY_REASONS as SKIP_KEY_REASONS
from s3lb.formats._detect import detect_format as detect_format
from s3lb.formats._detect import skip_reason as skip_reason
from s3lb.formats._detect import sniff_format as sniff_format

__all__ = [
    "FORMATS",
    "SKIP_KEY_REASONS",
    "Document",
    "LogFormat",
    "ObjectInfo",
    "ParseError",
    "RecordParser",
    "RecordSplitter",
    "detect_format",
    "get_format",
    "skip_reason",
    "sniff_format",
]

#: Every format by name (aliases included).
FORMATS: dict[str, LogFormat] = {
    fmt.name: fmt
    for fmt in (
        alb.FORMAT,
        elb.FORMAT,
        elb.CLB_ALIAS,
        nlb.FORMAT,
        cloudfront.FORMAT,
        waf.FORMAT,
        json_lines.FORMAT,
        cloudtrail.FORMAT,
        vpcflow.FORMAT,
        s3access.FORMAT,
        route53_resolver.FORMAT,
        network_firewall.FORMAT,
    )
}


def get_format(name: str) -> LogFormat:
    """The format called ``name``.

    Raises:
        KeyError: no such format; the message lists the known names.
    """
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise KeyError(f"unknown log format {name!r}; known formats: {known}") from None
