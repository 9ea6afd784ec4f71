"""The wire side of the fake cluster (:mod:`tests.fakes.fake_es`): its replies, error
bodies as Elasticsearch writes them, and the bulk body parser."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

__all__ = [
    "DOWN_ERRORS",
    "ITEM_ERRORS",
    "SHARDS",
    "WWW_AUTHENTICATE",
    "Action",
    "BadRequest",
    "DocKey",
    "DownMode",
    "Hangup",
    "ItemPlan",
    "Outcome",
    "Reply",
    "RequestRecord",
    "decode_body",
    "dumps",
    "error_reply",
    "json_reply",
    "parse_bulk",
    "unsupported_content_type",
]

DownMode = Literal["503", "429", "401", "reset"]
#: ``(doc_id, position) -> status | None``, or ``{_id or position: status or [statuses]}``.
ItemPlan = Callable[[str, int], int | None] | Mapping[str | int, int | Sequence[int]]
DocKey = tuple[str, str]

NDJSON_TYPES = ("application/json", "application/x-ndjson")
SHARDS = {"total": 2, "successful": 1, "failed": 0}
ITEM_ERRORS: dict[int, tuple[str, str]] = {
    400: (
        "mapper_parsing_exception",
        "failed to parse field [fake_field] of type [long] in document with id '{id}'",
    ),
    403: (
        "cluster_block_exception",
        "index [{index}] blocked by: [FORBIDDEN/8/index write (api)];",
    ),
    404: ("index_not_found_exception", "no such index [{index}]"),
    409: (
        "version_conflict_engine_exception",
        "[{id}]: version conflict, document already exists (current version [{version}])",
    ),
    429: (
        "es_rejected_execution_exception",
        "rejected execution of primary operation [coordinating_and_primary_bytes=0, "
        "replica_bytes=0, all_bytes=0, primary_operation_bytes=0, max_coordinating_and_"
        "primary_bytes=0] (fake)",
    ),
    500: ("exception", "fake internal failure for [{id}]"),
    503: ("unavailable_shards_exception", "[{index}][0] primary shard is not active Timeout: [1m]"),
}
DOWN_ERRORS: dict[str, tuple[int, str, str]] = {
    "429": (
        429,
        "es_rejected_execution_exception",
        "rejected execution of coordinating operation (fake cluster overloaded)",
    ),
    "503": (
        503,
        "cluster_block_exception",
        "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];",
    ),
    "401": (
        401,
        "security_exception",
        "missing authentication credentials for REST request [{path}]",
    ),
}
WWW_AUTHENTICATE = 'Basic realm="security" charset="UTF-8"'


class RequestRecord(NamedTuple):
    """One request the fake received (faulted ones included).

    ``nbytes`` is the body length after ``Content-Encoding`` decoding; ``n_items`` is the
    number of bulk actions (0 for other requests or an unparsable bulk body).
    """

    method: str
    path: str
    n_items: int
    nbytes: int


@dataclass(slots=True)
class Reply:
    """An answer, with the items it acknowledges and their statuses."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    acked: list[DocKey] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Hangup:
    """Answer nothing: ``reset`` sends a TCP RST, otherwise a plain close (FIN)."""

    reset: bool


Outcome = Reply | Hangup


class BadRequest(Exception):
    """A request-level error (its status, type and reason)."""

    def __init__(self, status: int, err_type: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.err_type, self.reason = status, err_type, reason


@dataclass(slots=True)
class Action:
    """One ``create`` or ``index`` action of a bulk body."""

    op: str
    index: str
    doc_id: str
    source: dict[str, Any] | None  # None: the source line is not a JSON object


def parse_bulk(body: bytes, path_index: str | None, new_id: Callable[[], str]) -> list[Action]:
    """The actions of a bulk body; ``new_id`` names an action without ``_id``."""
    if not body:
        raise BadRequest(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;",
        )
    if not body.endswith(b"\n"):
        raise BadRequest(
            400,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        )
    lines = body.split(b"\n")[:-1]
    actions: list[Action] = []
    for n in range(0, len(lines), 2):
        try:
            meta = json.loads(lines[n])
        except ValueError:
            meta = None
        if not isinstance(meta, dict) or len(meta) != 1:
            raise BadRequest(
                400, "illegal_argument_exception", f"Malformed action/metadata line [{n + 1}]"
            )
        ((op, params),) = meta.items()
        if op not in ("create", "index") or not isinstance(params, dict):
            raise BadRequest(
                400,
                "illegal_argument_exception",
                f"Malformed action/metadata line [{n + 1}]: the fake supports only "
                f"create and index, not [{op}]",
            )
        index = params.get("_index", path_index)
        if not isinstance(index, str) or not index:
            raise BadRequest(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: index is missing;",
            )
        if n + 1 >= len(lines):
            raise BadRequest(
                400,
                "illegal_argument_exception",
                f"The bulk request must be terminated by a newline [\\n] (line {n + 1} "
                "has no source)",
            )
        doc_id = params.get("_id")
        if doc_id is None:
            doc_id = new_id()
        try:
            source = json.loads(lines[n + 1])
        except ValueError:
            source = None
        actions.append(Action(op, index, str(doc_id), source if isinstance(source, dict) else None))
    return actions


def decode_body(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        raise BadRequest(400, "parse_exception", f"cannot decode {encoding} body: {exc}") from None
    if encoding not in ("", "identity"):
        raise BadRequest(415, "illegal_argument_exception", f"unsupported encoding [{encoding}]")
    return body


def unsupported_content_type(content_type: str) -> Reply | None:
    mime = content_type.split(";")[0].strip().lower()
    if mime in NDJSON_TYPES or mime.startswith("application/vnd.elasticsearch+"):
        return None
    shown = content_type or "(missing)"
    return json_reply(
        406, {"error": f"Content-Type header [{shown}] is not supported", "status": 406}
    )


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def json_reply(status: int, doc: Any) -> Reply:
    return Reply(status, dumps(doc), {"content-type": "application/json"})


def error_reply(status: int, err_type: str, reason: str) -> Reply:
    cause = {"type": err_type, "reason": reason}
    return json_reply(status, {"error": {"root_cause": [cause], **cause}, "status": status})
