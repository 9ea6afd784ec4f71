"""Sans-IO bulk protocol: NDJSON ``create`` bodies and per-item classification.

Every action is ``create`` with a stable ``_id``, so re-sending a document after a
lost response or a restart is answered ``409`` and counted as a duplicate, never
indexed twice. Classification of each item of a response:

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
sent and is reported separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from s3lb.acks import BulkItem


__all__ = ["build_body", "classify", "item_size", "split_requests"]

_encoder = msgspec.json.Encoder()


def _action(item: BulkItem) -> bytes:
    return (
        b'{"create":{"_index":'
        + _encoder.encode(item.index)
        + b',"_id":'
        + _encoder.encode(item.doc_id)
        + b"}}\n"
    )


def build_body(items: Sequence[BulkItem]) -> bytes:
    """The NDJSON body of a ``_bulk`` request creating ``items``."""
    parts: list[bytes] = []
    for item in items:
        parts.append(_action(item))
        parts.append(item.source)
        parts.append(b"\n")
    return b"".join(parts)


def item_size(item: BulkItem) -> int:
    """The bytes ``item`` adds to a request body (action line, source, newlines)."""
    return len(_action(item)) + len(item.source) + 1


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


class _Result(msgspec.Struct):
    status: int = 0
    error: Any = None


class _Response(msgspec.Struct):
    items: list[dict[str, _Result]] = []
    errors: bool = False


_decoder = msgspec.json.Decoder(_Response)


class _Summary(msgspec.Struct):
    errors: bool = True
    items: list[msgspec.Raw] = []


_summary_decoder = msgspec.json.Decoder(_Summary)


def classify(payload: bytes, items: Sequence[BulkItem]) -> list[tuple[BulkItem, str, str]]:
    """``(item, outcome, reason)`` for each item; outcome is ``indexed``,
    ``duplicate``, ``retry`` or ``rejected``. A response that does not match the
    request (wrong length, not JSON) raises ValueError: the caller retries it whole."""
    try:
        summary = _summary_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ValueError(f"unreadable bulk response: {exc}") from None
    if len(summary.items) != len(items):
        raise ValueError(f"bulk response has {len(summary.items)} items for {len(items)} sent")
    if not summary.errors:
        # The common case: every item created (a 409 or any failure sets "errors").
        return [(item, "indexed", "") for item in items]
    response = _decoder.decode(payload)
    if len(response.items) != len(items):
        raise ValueError(f"bulk response has {len(response.items)} items for {len(items)} sent")
    results = []
    for item, entry in zip(items, response.items, strict=True):
        result = next(iter(entry.values()), _Result())
        status = result.status
        if 200 <= status < 300:
            results.append((item, "indexed", ""))
        elif status == 409:
            results.append((item, "duplicate", ""))
        elif status == 429 or status >= 500:
            results.append((item, "retry", _reason(status, result.error)))
        else:
            results.append((item, "rejected", _reason(status, result.error)))
    return results


def _reason(status: int, error: Any) -> str:
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})"
        return f"HTTP {status} {text}"
    return f"HTTP {status} {error or ''}".strip()
