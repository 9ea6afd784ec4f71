"""``s3lb state`` output: the checkpoint store as a human table or one JSON document.

Pure: takes what :mod:`s3lb.checkpoint` read and returns text. Timestamps are UTC
ISO 8601 strings (``2024-05-01T12:00:00.000Z``), ``null``/``-`` when unset. Given a
width (a terminal's), table rows fit in it: object keys and job names lose their
middle, errors and last keys their end, so that a key's file name stays readable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from s3lb.checkpoint import ImportCursor, ObjectState, StoreUsage
from s3lb.sources import split_job_id

__all__ = ["render_state"]

# In the table: unfinished objects first, then the most recently updated.
_STATUS_ORDER = {"in_progress": 0, "failed": 1, "done": 2}


def render_state(
    objects: Sequence[ObjectState],
    cursors: Sequence[ImportCursor],
    as_json: bool,
    *,
    usage: StoreUsage | None = None,
    max_done_rows: int = 50,
    width: int | None = None,
) -> str:
    """Render the store's content.

    Args:
        objects: object states, e.g. ``store.objects()``.
        cursors: import cursors, e.g. ``store.cursors()``.
        as_json: one JSON document ``{"store", "objects", "imports"}`` listing
            everything, instead of the table.
        usage: the store's size figures, shown when given.
        max_done_rows: the table lists at most this many ``done`` objects (the most
            recent); JSON lists all.
        width: the most characters a table row may take (None: no limit; JSON is never
            shortened).

    Returns:
        The text, ending with a newline.
    """
    if as_json:
        return _json(objects, cursors, usage)
    return _table(objects, cursors, usage, max_done_rows, width)


def _iso(ts: float) -> str | None:
    if not ts:
        return None
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(
    objects: Sequence[ObjectState], cursors: Sequence[ImportCursor], usage: StoreUsage | None
) -> str:
    doc: dict[str, Any] = {
        "store": msgspec.to_builtins(usage) if usage is not None else None,
        "objects": [
            {
                "bucket": o.bucket,
                "key": o.key,
                "version": o.version,
                "status": o.status,
                "acked": o.acked,
                "offset": o.offset,
                "total": o.total,
                "records": {
                    "indexed": o.records.indexed,
                    "duplicate": o.records.duplicate,
                    "rejected": o.records.rejected,
                    "parse_failed": o.records.parse_failed,
                },
                "error": o.error,
                "started": _iso(o.started),
                "updated": _iso(o.updated),
            }
            for o in objects
        ],
        "imports": [
            {
                "job": c.job,
                "last_key": c.last_key,
                "done": c.done,
                "failed": c.failed,
                "complete": c.complete,
                "updated": _iso(c.updated),
            }
            for c in cursors
        ],
    }
    return msgspec.json.encode(doc).decode() + "\n"


def _printable(text: str) -> str:
    # Keys may hold newlines or escape sequences; a table row must stay one row.
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _cut_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, its middle replaced by ``…``; the
    tail (a key's file name) keeps three quarters of the room."""
    if len(text) <= width:
        return text
    if width < 2:
        return text[len(text) - width :] if width > 0 else ""
    head = (width - 1) // 4
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def _cut_end(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


#: A column that may be narrowed to fit a width: (its index, its least width, how its
#: cells are shortened). The first listed gives up room first.
Squeeze = tuple[int, int, Callable[[str, int], str]]


def _grid(
    header: tuple[str, ...],
    rows: list[tuple[str, ...]],
    width: int | None = None,
    squeeze: Sequence[Squeeze] = (),
) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    cutters: dict[int, Callable[[str, int], str]] = {}
    if width is not None:
        excess = sum(widths) + 2 * (len(widths) - 1) - width
        for index, least, cut in squeeze:
            if excess <= 0:
                break
            taken = min(excess, max(widths[index] - max(least, len(header[index])), 0))
            if taken:
                widths[index] -= taken
                excess -= taken
                cutters[index] = cut
    lines = []
    for row in [header, *rows]:
        cells = [
            cutters[i](cell, widths[i]) if i in cutters else cell for i, cell in enumerate(row)
        ]
        lines.append(
            "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()
        )
    return lines


def _table(
    objects: Sequence[ObjectState],
    cursors: Sequence[ImportCursor],
    usage: StoreUsage | None,
    max_done_rows: int,
    width: int | None,
) -> str:
    lines: list[str] = []
    if usage is not None:
        share = usage.used_bytes / usage.map_size * 100 if usage.map_size else 0.0
        lines.append(
            f"checkpoint store {usage.path}: {_size(usage.used_bytes)} used of "
            f"{_size(usage.map_size)} ({share:.0f}%)"
        )
    counts = {status: 0 for status in _STATUS_ORDER}
    for o in objects:
        counts[o.status] = counts.get(o.status, 0) + 1
    lines.append(
        f"objects: {len(objects)} ("
        + ", ".join(f"{n} {status}" for status, n in counts.items())
        + ")"
    )
    ordered = sorted(objects, key=lambda o: (_STATUS_ORDER.get(o.status, 3), -o.updated))
    shown = [o for o in ordered if o.status != "done"]
    done = [o for o in ordered if o.status == "done"]
    shown += done[:max_done_rows]
    if shown:
        rows: list[tuple[str, ...]] = [
            (
                o.status,
                str(o.acked),
                str(o.offset) if o.offset >= 0 else "-",
                _iso(o.updated) or "-",
                _printable(o.version[:12]) or "-",
                _printable(f"s3://{o.bucket}/{o.key}"),
                _printable(o.error),
            )
            for o in shown
        ]
        header: tuple[str, ...] = (
            "STATUS",
            "ACKED",
            "OFFSET",
            "UPDATED",
            "VERSION",
            "OBJECT",
            "ERROR",
        )
        squeeze = [(6, 16, _cut_end), (5, 24, _cut_middle), (6, 5, _cut_end)]
        lines += _grid(header, rows, width, squeeze)
    hidden = len(done) - max_done_rows
    if hidden > 0:
        lines.append(f"... and {hidden} older done objects (--json lists all)")
    if cursors:
        jobs = _jobs(cursors)
        lines.append("")
        lines.append(f"imports: {len(jobs)}")
        rows = [
            (
                _printable(job.job),
                # An incomplete job may be running, or interrupted: a rerun continues it.
                "complete" if job.complete else "incomplete",
                str(job.done),
                str(job.failed),
                shares,
                _iso(job.updated) or "-",
                _printable(job.last_key) or "-",
            )
            for job, shares in jobs
        ]
        header = ("JOB", "STATE", "DONE", "FAILED", "SHARES", "UPDATED", "LAST KEY")
        squeeze = [(6, 16, _cut_middle), (0, 16, _cut_middle), (6, 8, _cut_middle)]
        lines += _grid(header, rows, width, squeeze)
    return "\n".join(lines) + "\n"


def _jobs(cursors: Sequence[ImportCursor]) -> list[tuple[ImportCursor, str]]:
    """One row per job: the cursors of a multi-process import's shares (``JOB
    share=i/N``) are summed into their job's, with ``complete shares/N``; its last key
    is the least of theirs (every object up to it is done or failed in every share)."""
    plain: list[tuple[ImportCursor, str]] = []
    shared: dict[tuple[str, int], list[ImportCursor]] = {}
    for cursor in cursors:
        base, share = split_job_id(cursor.job)
        if share is None:
            plain.append((cursor, "-"))
        else:
            shared.setdefault((base, share.count), []).append(cursor)
    for (base, count), parts in shared.items():
        finished = sum(part.complete for part in parts)
        job = ImportCursor(
            job=base,
            last_key=min(part.last_key for part in parts) if len(parts) == count else "",
            done=sum(part.done for part in parts),
            failed=sum(part.failed for part in parts),
            complete=finished == count,
            updated=max(part.updated for part in parts),
        )
        plain.append((job, f"{finished}/{count}"))
    return sorted(plain, key=lambda row: row[0].job)
