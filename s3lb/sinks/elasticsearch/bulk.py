"""The one bulk protocol (sans-IO): NDJSON actions, responses, outcomes, 413 splits.

Used by the sink (``create`` with a stable ``_id``: a re-sent document is answered
``409`` and counted as a duplicate, never indexed twice), by the dead-letter index
writer (``index``) and by the replay (``delete``). Each item of a response is
classified:

====================  ===========
status                outcome
====================  ===========
2xx                   indexed
409                   duplicate (already there: delivered)
429, 5xx              retry (with backoff)
any other             rejected (dead-lettered with the reason)
====================  ===========

Requests are cut to at most ``bulk_max_size`` items and ``bulk_max_bytes`` bytes of
body (:func:`split_requests`); a document that alone exceeds the byte limit can never be
sent and is reported separately. A request answered 413 is split in halves
(:func:`on_too_large`) down to a single document.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import msgspec

if TYPE_CHECKING:
    from s3lb.acks import BulkItem


__all__ = [
    "Outcome",
    "Partition",
    "action_line",
    "build_body",
    "classify",
    "delete_body",
    "halves",
    "index_body",
    "item_size",
    "on_too_large",
    "outcome_of",
    "partition",
    "split_requests",
]

T = TypeVar("T")
Outcome = Literal["indexed", "duplicate", "retry", "rejected"]

#: Before the cluster took any body, a lone document this small refused with 413 is not
#: too large: the endpoint refuses everything (a proxy's limit at zero, say).
SMALL_DOCUMENT = 16 * 1024

_encoder = msgspec.json.Encoder()


def action_line(op: str, index: str, doc_id: str) -> bytes:
    """``{"<op>":{"_index":…,"_id":…}}`` and its newline."""
    return (
        b'{"'
        + op.encode()
        + b'":{"_index":'
        + _encoder.encode(index)
        + b',"_id":'
        + _encoder.encode(doc_id)
        + b"}}\n"
    )


def build_body(items: Sequence[BulkItem]) -> bytes:
    """The NDJSON body of a ``_bulk`` request creating ``items``."""
    parts: list[bytes] = []
    for item in items:
        parts += (action_line("create", item.index, item.doc_id), item.source, b"\n")
    return b"".join(parts)


def index_body(entries: Iterable[tuple[str, str, Any]]) -> bytes:
    """The body indexing (creating or overwriting) each ``(index, _id, document)``."""
    parts: list[bytes] = []
    for index, doc_id, document in entries:
        parts += (action_line("index", index, doc_id), _encoder.encode(document), b"\n")
    return b"".join(parts)


def delete_body(index: str, ids: Iterable[str]) -> bytes:
    """The body deleting the documents ``ids`` of ``index``."""
    return b"".join(action_line("delete", index, doc_id) for doc_id in ids)


def item_size(item: BulkItem) -> int:
    """The bytes ``item`` adds to a request body (action line, source, newlines)."""
    return len(action_line("create", item.index, item.doc_id)) + len(item.source) + 1


def split_requests(
    items: Sequence[BulkItem], max_items: int, max_bytes: int
) -> tuple[list[list[BulkItem]], list[BulkItem]]:
    """Cut ``items`` into requests of at most ``max_items`` items and ``max_bytes``
    bytes of body, in order; also return the items too large to fit any request."""
    requests: list[list[BulkItem]] = []
    oversize: list[BulkItem] = []
    current: list[BulkItem] = []
    size = 0
    for item in items:
        n = item_size(item)
        if n > max_bytes:
            oversize.append(item)
            continue
        if current and (len(current) >= max_items or size + n > max_bytes):
            requests.append(current)
            current, size = [], 0
        current.append(item)
        size += n
    if current:
        requests.append(current)
    return requests, oversize


def halves(items: Sequence[T]) -> tuple[list[T], list[T]]:
    """``items`` cut in two, in order (a request answered 413 is sent as two)."""
    half = len(items) // 2
    return list(items[:half]), list(items[half:])


def on_too_large(
    n_items: int, body_bytes: int, largest_accepted: int
) -> Literal["split", "reject", "outage"]:
    """What to do with a request of ``n_items`` items (``body_bytes``) answered 413.

    Several items: split. One: it is really too large (reject it) when it is larger
    than every body the cluster took (``largest_accepted``), or, before the cluster
    took any, larger than :data:`SMALL_DOCUMENT`. Otherwise the endpoint refuses
    everything: an outage to retry, never a reason to dead-letter the whole stream.
    """
    if n_items > 1:
        return "split"
    limit = largest_accepted or SMALL_DOCUMENT
    return "outage" if body_bytes <= limit else "reject"


def outcome_of(status: int) -> Outcome:
    """The outcome of one item answered ``status``."""
    if 200 <= status < 300:
        return "indexed"
    if status == 409:
        return "duplicate"
    if status == 429 or status >= 500:
        return "retry"
    return "rejected"


class _Result(msgspec.Struct):
    status: int = 0
    error: Any = None


class _Response(msgspec.Struct):
    items: list[dict[str, _Result]] = []


class _Summary(msgspec.Struct):
    errors: bool = True
    items: list[msgspec.Raw] = []


_decoder = msgspec.json.Decoder(_Response)
_summary_decoder = msgspec.json.Decoder(_Summary)
#: A ``"status"`` that is not 2xx: a non-conforming answer may say ``errors: false``
#: over failed items, so the fast path holds only when none appears.
_NOT_2XX = re.compile(rb'"status"\s*:\s*(?!2\d\d(?!\d))')


def classify(payload: bytes, items: Sequence[T]) -> list[tuple[T, Outcome, str]]:
    """``(item, outcome, reason)`` for each item, in order. A response that does not
    match the request (wrong length, not JSON) raises ValueError: retry it whole."""
    try:
        summary = _summary_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ValueError(f"unreadable bulk response: {exc}") from None
    if len(summary.items) != len(items):
        raise ValueError(f"bulk response has {len(summary.items)} items for {len(items)} sent")
    if not summary.errors and not _NOT_2XX.search(payload):
        # The common case, verified cheaply: every item answered 2xx.
        return [(item, "indexed", "") for item in items]
    response = _decoder.decode(payload)
    results: list[tuple[T, Outcome, str]] = []
    for item, entry in zip(items, response.items, strict=True):
        result = next(iter(entry.values()), _Result())
        outcome = outcome_of(result.status)
        reason = "" if outcome in ("indexed", "duplicate") else _reason(result)
        results.append((item, outcome, reason))
    return results


def _reason(result: _Result) -> str:
    status, error = result.status, result.error
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})"
        return f"HTTP {status} {text}"
    return f"HTTP {status} {error or ''}".strip()


@dataclass
class Partition(Generic[T]):
    """The items of one answer, by outcome (rejected and retried ones with a reason)."""

    indexed: list[T] = field(default_factory=list)
    duplicate: list[T] = field(default_factory=list)
    retry: list[T] = field(default_factory=list)
    rejected: list[tuple[T, str]] = field(default_factory=list)
    retry_reasons: Counter[str] = field(default_factory=Counter)


def partition(results: Iterable[tuple[T, Outcome, str]]) -> Partition[T]:
    """Group :func:`classify`'s results by outcome, keeping their order."""
    out: Partition[T] = Partition()
    for item, outcome, reason in results:
        if outcome == "rejected":
            out.rejected.append((item, reason))
        elif outcome == "retry":
            out.retry.append(item)
            out.retry_reasons[reason] += 1
        else:
            getattr(out, outcome).append(item)
    return out
