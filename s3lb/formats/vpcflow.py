"""VPC Flow Logs and Transit Gateway Flow Logs delivered to S3 as text (``vpcflow``).

Space-separated. The first line of every object names the fields of its format
(``version account-id interface-id ...``, any subset in any order); the parser keeps it
as state and maps each record by name. Without a header the default version 2 format
is assumed. Names are AWS's, in snake_case (``log-status`` → ``log_status``); every
number AWS documents (versions 2–8, Transit Gateway) is an integer; ``-`` is omitted.
A record must hold exactly one value per field of its format, or it is dead-lettered.

``@timestamp`` is ``start`` (epoch seconds), else ``end``; a format without either
(AWS's NAT gateway example) takes the ``_YYYYMMDDTHHMMZ_`` stamp of the object key,
else the object's LastModified.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, final

from s3lb.formats._base import Document, LogFormat, ObjectInfo, ParseError
from s3lb.formats._fields import INT64, decode_line, to_int
from s3lb.formats._time import epoch_seconds, format_dt
from s3lb.formats.mappings import EPOCH_OR_DATE, INTEGER, IP, KEYWORD, LONG

__all__ = [
    "DEFAULT_FIELDS",
    "FORMAT",
    "KNOWN_FIELDS",
    "VpcFlowParser",
    "is_header",
    "object_time",
]

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

#: Transit Gateway Flow Logs fields (version 6) beyond those VPC flow logs share.
_TGW_FIELDS = (
    "resource-type",
    "tgw-id",
    "tgw-attachment-id",
    "tgw-src-vpc-account-id",
    "tgw-dst-vpc-account-id",
    "tgw-src-vpc-id",
    "tgw-dst-vpc-id",
    "tgw-src-subnet-id",
    "tgw-dst-subnet-id",
    "tgw-src-eni",
    "tgw-dst-eni",
    "tgw-src-az-id",
    "tgw-dst-az-id",
    "tgw-pair-attachment-id",
    "packets-lost-no-route",
    "packets-lost-blackhole",
    "packets-lost-mtu-exceeded",
    "packets-lost-ttl-expired",
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
        *_TGW_FIELDS,
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
        "packets-lost-no-route",
        "packets-lost-blackhole",
        "packets-lost-mtu-exceeded",
        "packets-lost-ttl-expired",
    ]
)
_NAME = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]\Z")


class _Layout:
    __slots__ = ("columns", "end", "name", "start")

    def __init__(self, header: tuple[str, ...], name: str) -> None:
        self.columns = [(field.replace("-", "_"), field in _INTS) for field in header]
        self.start = header.index("start") if "start" in header else -1
        self.end = header.index("end") if "end" in header else -1
        self.name = name


_DEFAULT_LAYOUT = _Layout(DEFAULT_FIELDS, "the default format")
_KEY_STAMP = re.compile(r"_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z_")


def is_header(tokens: list[str]) -> bool:
    """True if ``tokens`` name fields (a header line) rather than hold values."""
    return (
        bool(tokens)
        and all(_NAME.match(tok) for tok in tokens)
        and any(tok in KNOWN_FIELDS for tok in tokens)
    )


def object_time(obj: ObjectInfo) -> str | None:
    """The time of an object's records that carry none: the key's ``_YYYYMMDDTHHMMZ_``
    stamp (the start of the 5-minute delivery window), else LastModified."""
    m = _KEY_STAMP.search(obj.key.rsplit("/", 1)[-1])
    if m is not None:
        year, month, day, hour, minute = m.groups()
        try:
            return format_dt(datetime(int(year), int(month), int(day), int(hour), int(minute)))
        except ValueError:
            pass
    if obj.last_modified:
        try:
            moment = datetime.fromisoformat(obj.last_modified)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return format_dt(moment)
    return None


@final
class VpcFlowParser:
    """Parses one object's records; remembers its header line."""

    __slots__ = ("_fallback", "_layout")

    def __init__(self, obj: ObjectInfo | None = None) -> None:
        self._layout = _DEFAULT_LAYOUT
        self._fallback = object_time(obj) if obj is not None else None

    def parse(self, raw: bytes) -> Document | None:
        """Return the document for one record; ``None`` for the header or a blank line."""
        line = decode_line(raw)
        # Split on runs of whitespace: some AWS examples hold a double space.
        tokens = line.split()
        if not tokens:
            return None
        if tokens[0] == "version" or is_header(tokens):
            self._layout = _Layout(tuple(tokens), "the header")
            return None
        layout = self._layout
        n = len(tokens)
        if n != len(layout.columns):
            # The format fixes the count: fewer values is a cut line, more a foreign one.
            raise ParseError(
                f"vpcflow: {n} values for the {len(layout.columns)} fields of {layout.name}"
            )
        doc: dict[str, Any] = {}
        for (name, is_int), value in zip(layout.columns, tokens, strict=True):
            if value == "-":
                continue
            doc[name] = to_int(value, name, INT64) if is_int else value
        for index in (layout.start, layout.end):
            if index >= 0 and tokens[index] != "-":
                doc["@timestamp"] = epoch_seconds(doc[layout.columns[index][0]])
                break
        else:
            if self._fallback is None:
                raise ParseError(
                    "vpcflow: the record has no start or end time, and neither the object "
                    "key (_YYYYMMDDTHHMMZ_) nor its LastModified gives one"
                )
            doc["@timestamp"] = self._fallback
        return doc


def _new_parser(options: Mapping[str, Any]) -> VpcFlowParser:
    return VpcFlowParser()


def _object_parser(options: Mapping[str, Any], obj: ObjectInfo) -> VpcFlowParser:
    return VpcFlowParser(obj)


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
    "ecs_cluster_arn": KEYWORD,
    "ecs_cluster_name": KEYWORD,
    "ecs_container_instance_arn": KEYWORD,
    "ecs_container_instance_id": KEYWORD,
    "ecs_container_id": KEYWORD,
    "ecs_second_container_id": KEYWORD,
    "ecs_service_name": KEYWORD,
    "ecs_task_definition_arn": KEYWORD,
    "ecs_task_arn": KEYWORD,
    "ecs_task_id": KEYWORD,
    # Transit Gateway Flow Logs.
    "resource_type": KEYWORD,
    "tgw_id": KEYWORD,
    "tgw_attachment_id": KEYWORD,
    "tgw_src_vpc_account_id": KEYWORD,
    "tgw_dst_vpc_account_id": KEYWORD,
    "tgw_src_vpc_id": KEYWORD,
    "tgw_dst_vpc_id": KEYWORD,
    "tgw_src_subnet_id": KEYWORD,
    "tgw_dst_subnet_id": KEYWORD,
    "tgw_src_eni": KEYWORD,
    "tgw_dst_eni": KEYWORD,
    "tgw_src_az_id": KEYWORD,
    "tgw_dst_az_id": KEYWORD,
    "tgw_pair_attachment_id": KEYWORD,
    "packets_lost_no_route": LONG,
    "packets_lost_blackhole": LONG,
    "packets_lost_mtu_exceeded": LONG,
    "packets_lost_ttl_expired": LONG,
}


FORMAT = LogFormat(
    name="vpcflow",
    fields=MAPPINGS,
    new_parser=_new_parser,
    description="VPC Flow Logs (text, header line names the fields)",
    stateful=True,
    object_parser=_object_parser,
)
