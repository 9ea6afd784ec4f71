"""VPC Flow Logs delivered to S3 as text (``log_format: vpcflow``).

Space-separated. The first line of every object names the fields of its format
(``version account-id interface-id ...``, any subset in any order); the parser keeps it
as state and maps each record by name. Without a header the default version 2 format
is assumed. Names are AWS's, in snake_case (``log-status`` → ``log_status``); numbers
are integers; ``-`` is omitted (NODATA/SKIPDATA records carry few fields).
``@timestamp`` is ``start`` (epoch seconds), else ``end``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, final

from s3lb.formats._base import Document, LogFormat, ParseError
from s3lb.formats._fields import INT64, decode_line, to_int
from s3lb.formats._mappings import EPOCH_OR_DATE, INTEGER, IP, KEYWORD, LONG
from s3lb.formats._time import epoch_seconds

__all__ = ["DEFAULT_FIELDS", "FORMAT", "KNOWN_FIELDS", "VpcFlowParser", "is_header"]

#: The default (version 2) format.
DEFAULT_FIELDS: tuple[str, ...] = tuple(
    [
        "version",
        "account-id",
        "interface-id",
        "srcaddr",
        "dstaddr",
        "srcport",
        "dstport",
        "protocol",
        "packets",
        "bytes",
        "start",
        "end",
        "action",
        "log-status",
    ]
)

#: Fields of versions 2–8 that s3lb knows; unknown header names become string fields.
KNOWN_FIELDS: frozenset[str] = frozenset(
    (
        *DEFAULT_FIELDS,
        *["vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr"],
        *["region", "az-id", "sublocation-type", "sublocation-id"],
        *["pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path"],
        *(
            [
                "ecs-cluster-arn",
                "ecs-cluster-name",
                "ecs-container-instance-arn",
                "ecs-container-instance-id",
                "ecs-container-id",
                "ecs-second-container-id",
                "ecs-service-name",
                "ecs-task-definition-arn",
                "ecs-task-arn",
                "ecs-task-id",
            ]
        ),
        "reject-reason",
    )
)
_INTS = frozenset(
    [
        "version",
        "srcport",
        "dstport",
        "protocol",
        "packets",
        "bytes",
        "start",
        "end",
        "tcp-flags",
        "traffic-path",
    ]
)
_NAME = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]\Z")


class _Layout:
    __slots__ = ("columns", "end", "start")

    def __init__(self, header: tuple[str, ...]) -> None:
        self.columns = [(name.replace("-", "_"), name in _INTS) for name in header]
        self.start = header.index("start") if "start" in header else -1
        self.end = header.index("end") if "end" in header else -1


_DEFAULT_LAYOUT = _Layout(DEFAULT_FIELDS)


def is_header(tokens: list[str]) -> bool:
    """True if ``tokens`` name fields (a header line) rather than hold values."""
    return (
        bool(tokens)
        and all(_NAME.match(tok) for tok in tokens)
        and any(tok in KNOWN_FIELDS for tok in tokens)
    )


@final
class VpcFlowParser:
    """Parses one object's records; remembers its header line."""

    __slots__ = ("_layout",)

    def __init__(self) -> None:
        self._layout = _DEFAULT_LAYOUT

    def parse(self, raw: bytes) -> Document | None:
        """Return the document for one record; ``None`` for the header or a blank line."""
        line = decode_line(raw)
        # Split on runs of whitespace: some AWS examples hold a double space.
        tokens = line.split()
        if not tokens:
            return None
        if tokens[0] == "version" or is_header(tokens):
            self._layout = _Layout(tuple(tokens))
            return None
        layout = self._layout
        n = len(tokens)
        if n < len(layout.columns):
            # The header is the format: fewer values means a cut line.
            raise ParseError(
                f"vpcflow: {n} values for the {len(layout.columns)} fields of the header"
            )
        doc: dict[str, Any] = {}
        for (name, is_int), value in zip(layout.columns, tokens, strict=False):
            if value == "-":
                continue
            doc[name] = to_int(value, name, INT64) if is_int else value
        for index in (layout.start, layout.end):
            if 0 <= index < n and tokens[index] != "-":
                doc["@timestamp"] = epoch_seconds(doc[layout.columns[index][0]])
                break
        else:
            raise ParseError("vpcflow: the record has no start or end time")
        return doc


def _new_parser(options: Mapping[str, Any]) -> VpcFlowParser:
    return VpcFlowParser()


#: Index mappings of the fields this format writes (dotted paths for nested objects).
MAPPINGS: dict[str, dict[str, Any]] = {
    # "5", or "2" in the default format: a label, not a quantity.
    "version": KEYWORD,
    "account_id": KEYWORD,
    "interface_id": KEYWORD,
    "srcaddr": IP,
    "dstaddr": IP,
    "srcport": INTEGER,
    "dstport": INTEGER,
    "protocol": INTEGER,
    "packets": LONG,
    "bytes": LONG,
    "start": EPOCH_OR_DATE,
    "end": EPOCH_OR_DATE,
    "action": KEYWORD,
    "log_status": KEYWORD,
    "vpc_id": KEYWORD,
    "subnet_id": KEYWORD,
    "instance_id": KEYWORD,
    "tcp_flags": INTEGER,
    "type": KEYWORD,
    "pkt_srcaddr": IP,
    "pkt_dstaddr": IP,
    "region": KEYWORD,
    "az_id": KEYWORD,
    "sublocation_type": KEYWORD,
    "sublocation_id": KEYWORD,
    "pkt_src_aws_service": KEYWORD,
    "pkt_dst_aws_service": KEYWORD,
    "flow_direction": KEYWORD,
    "traffic_path": INTEGER,
    "reject_reason": KEYWORD,
}


FORMAT = LogFormat(
    name="vpcflow",
    fields=MAPPINGS,
    new_parser=_new_parser,
    description="VPC Flow Logs (text, header line names the fields)",
    stateful=True,
)
