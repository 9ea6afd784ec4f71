"""Acknowledgement tracking: when is an object, and then a message, finished?

Pure and synchronous. The reader registers each record it hands to the sink
(:meth:`ObjectTracker.add`) and says when it reached the end of the object
(:meth:`ObjectTracker.finish_reading`); the sink settles each record with its
outcome. An object is *done* once it was read to the end and every record it sent
is settled; it is *failed* when reading broke off (its message must not be deleted);
*gone* when S3 no longer has it (nothing to ship; its message may be deleted).

A :class:`MessageTracker` finishes when each of its objects has; it is deletable only
if none of them failed. The ack counter reaching zero mid-object never finishes
anything: ``finish_reading`` must have been called (the beats #38961 bug).
:class:`InFlightObjects` keeps one read per object version in flight: a second
notification of a version being read *follows* the first read and finishes as it
does, instead of reading and sending every record again.

The :class:`Watermark` below is the contiguous acknowledgement watermark of one object:
records are numbered 1, 2, 3…; acknowledgements arrive in any order; only the longest
prefix of positions that are *all* acknowledged may be checkpointed, because a resume
restarts just past it. Every position is acked exactly once from its point of view,
whether it went to the sink or not: the reader acks the positions it skips itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, final

from s3lb.crashpoints import crash_point
from s3lb.model import ObjectRef

__all__ = [
    "BulkItem",
    "InFlightObjects",
    "MessageTracker",
    "ObjectTracker",
    "Watermark",
    "settle",
]


@final
class Watermark:
    """The highest contiguous acknowledged position of one object and its byte offset.

    Args:
        acked: positions ``1..acked`` are already acknowledged (a resume starts here).
        offset: the byte offset just past record ``acked`` in the decompressed stream,
            or ``-1`` when unknown (a compressed object resumed from a checkpoint);
            the next advance makes it known again.
    """

    __slots__ = ("_acked", "_offset", "_pending")

    def __init__(self, acked: int = 0, offset: int = 0) -> None:
        if acked < 0:
            raise ValueError(f"acked must be >= 0, not {acked}")
        if offset < -1:
            raise ValueError(f"offset must be >= -1, not {offset}")
        self._acked = acked
        self._offset = offset
        # position -> offset just past it, for positions acked beyond the first gap.
        # Its size is bounded by the records in flight, which backpressure bounds.
        self._pending: dict[int, int] = {}

    @property
    def acked(self) -> int:
        """The highest position ``p`` such that every position ``1..p`` is acknowledged."""
        return self._acked

    @property
    def offset(self) -> int:
        """The byte offset just past record :attr:`acked` (``-1`` while unknown)."""
        return self._offset

    @property
    def pending(self) -> int:
        """How many positions are acknowledged beyond the first gap."""
        return len(self._pending)

    def beyond(self) -> list[tuple[int, int]]:
        """Positions acknowledged beyond the first gap, as inclusive ``(first, last)``
        ranges in order."""
        ranges: list[tuple[int, int]] = []
        for position in sorted(self._pending):
            if ranges and ranges[-1][1] == position - 1:
                ranges[-1] = (ranges[-1][0], position)
            else:
                ranges.append((position, position))
        return ranges

    def is_acked(self, position: int) -> bool:
        """True if ``position`` was acknowledged (in the prefix or beyond a gap)."""
        return position <= self._acked or position in self._pending

    def ack(self, position: int, next_offset: int) -> bool:
        """Acknowledge the record at ``position``.

        Acknowledging a position twice is harmless (a resent item acks again); the
        first ``next_offset`` given for a position wins.

        Args:
            position: the record's 1-based position.
            next_offset: the byte offset just past the record in the decompressed
                stream, where a resume after it would start reading.

        Returns:
            True if the contiguous prefix advanced.

        Raises:
            ValueError: ``position`` < 1 or ``next_offset`` < 0.
        """
        if position < 1:
            raise ValueError(f"positions start at 1, not {position}")
        if next_offset < 0:
            raise ValueError(f"next_offset must be >= 0, not {next_offset}")
        if position <= self._acked or position in self._pending:
            return False
        if position != self._acked + 1:
            self._pending[position] = next_offset
            return False
        pending = self._pending
        while True:
            self._acked = position
            self._offset = next_offset
            position += 1
            if position not in pending:
                return True
            next_offset = pending.pop(position)

    def __repr__(self) -> str:
        return f"Watermark(acked={self._acked}, offset={self._offset}, pending={self.pending})"


#: Outcomes a record can settle with.
OUTCOMES = ("indexed", "duplicate", "rejected", "parse_failed")


class ObjectTracker:
    """Counts one object's records from read to settled."""

    def __init__(
        self,
        ref: ObjectRef,
        on_finished: Callable[[ObjectTracker], None],
        *,
        watermark: Watermark | None = None,
        on_progress: Callable[[ObjectTracker], None] = lambda _t: None,
    ) -> None:
        self.ref = ref
        #: The contiguous acknowledged prefix, when checkpoints are kept.
        self.watermark = watermark
        self._on_progress = on_progress
        self.sent = 0
        self.settled = 0
        self.counts: Counter[str] = Counter()
        self.reading = True
        #: True when the object is not compressed (a resume may Range-GET).
        self.plain = False
        #: Records in the object once read to the end, else -1.
        self.total = -1
        self.failure = ""
        self.gone = False
        self.set_aside = False
        #: The tracker of the read this one follows (see :class:`InFlightObjects`).
        self.leader: ObjectTracker | None = None
        self._on_finished = on_finished
        self._finished = False

    @property
    def status(self) -> str:
        """``reading``, ``acking`` (read to the end, acks pending), ``done``, ``failed``,
        ``gone`` or ``set_aside`` (kept in the dead-letter store whole, e.g. its format
        is unknown: its message may go, and a later import retries it)."""
        if self.gone:
            return "gone"
        if self.set_aside:
            return "set_aside"
        if self.failure:
            return "failed"
        if self.reading:
            return "reading"
        return "done" if self.settled == self.sent else "acking"

    @property
    def finished(self) -> bool:
        """True once the outcome of the object is final."""
        return self._finished

    def add(self, n: int = 1) -> None:
        """``n`` more records were handed to the sink."""
        self.sent += n

    def settle(self, outcome: str, items: Sequence[BulkItem]) -> None:
        """``items`` (all of this object) reached a final ``outcome`` (see OUTCOMES)."""
        self.settled += len(items)
        self.counts[outcome] += len(items)
        if self.watermark is not None:
            for item in items:
                self.watermark.ack(item.position, item.end)
            self._on_progress(self)
        self._check()

    def pass_over(self, position: int, end: int) -> None:
        """A record that never goes to the sink (header, blank, dead-lettered) is
        settled for the watermark at once, and its progress is reported like an ack's:
        an object of blank or unparseable lines is checkpointed as it is read, so a
        restart neither re-scans it nor dead-letters its records again."""
        if self.watermark is not None and self.watermark.ack(position, end):
            self._on_progress(self)

    def count(self, outcome: str, n: int = 1) -> None:
        """Record ``n`` records that settled without reaching the sink (parse failures)."""
        self.counts[outcome] += n

    def finish_reading(self) -> None:
        """The reader reached the end of the object."""
        self.reading = False
        self._check()

    def fail(self, reason: str, *, gone: bool = False) -> None:
        """Reading broke off for ``reason``; ``gone`` when the object no longer exists."""
        self.reading = False
        self.failure = reason
        self.gone = gone
        self._check()

    def put_aside(self, reason: str) -> None:
        """The object as a whole was dead-lettered for ``reason`` (nothing was sent)."""
        self.reading = False
        self.failure = reason
        self.set_aside = True
        self._check()

    def _check(self) -> None:
        if self._finished:
            return
        if self.failure or (not self.reading and self.settled == self.sent):
            self._finished = True
            self._on_finished(self)


class InFlightObjects:
    """The object versions being read, by key (input, bucket, key, version id or
    ETag): one read each, however many notifications name it at once."""

    def __init__(self) -> None:
        self._reading: dict[Hashable, list[ObjectTracker]] = {}

    def __len__(self) -> int:
        return len(self._reading)

    def admit(self, key: Hashable, tracker: ObjectTracker) -> bool:
        """True if ``tracker`` is the first of ``key`` in flight: its object must be read.
        False if another read of ``key`` is in flight: ``tracker`` follows it and
        finishes as it does (same status, reason, watermark and counts), so its message
        is deleted, or kept, with the first one's."""
        followers = self._reading.get(key)
        if followers is not None:
            tracker.leader = followers[0]
            followers.append(tracker)
            return False
        self._reading[key] = [tracker]
        on_finished = tracker._on_finished

        def finished(leader: ObjectTracker) -> None:
            group = self._reading.pop(key)
            on_finished(leader)  # the first message's done mark before the followers'
            for follower in group[1:]:
                _follow(follower, leader)

        tracker._on_finished = finished
        return True


def _follow(tracker: ObjectTracker, leader: ObjectTracker) -> None:
    """Finish ``tracker`` as its finished ``leader`` did (its checkpoint would be the
    leader's own, so its message is never deleted before the object's done mark)."""
    tracker.ref = leader.ref
    tracker.watermark = leader.watermark
    tracker.counts = Counter(leader.counts)
    tracker.total = leader.total
    tracker.plain = leader.plain
    if leader.gone:
        tracker.fail(leader.failure, gone=True)
    elif leader.set_aside:
        tracker.put_aside(leader.failure)
    elif leader.failure:
        tracker.fail(leader.failure)
    else:
        tracker.finish_reading()


@dataclass(eq=False)
class MessageTracker:
    """One received message and the objects it names."""

    message: Any
    expected: int
    on_finished: Callable[[MessageTracker], None]
    finished_objects: list[ObjectTracker] = field(default_factory=list)
    #: Heartbeat bookkeeping (trio clock): when received, when to extend next, and
    #: whether the heartbeat stopped (handle invalid, or released after max_hold).
    received_at: float = 0.0
    extend_at: float = 0.0
    held: bool = True

    def object_finished(self, tracker: ObjectTracker) -> None:
        """Called by each of the message's object trackers when it finishes."""
        self.finished_objects.append(tracker)
        if len(self.finished_objects) == self.expected:
            self.on_finished(self)

    @property
    def deletable(self) -> bool:
        """Every object was shipped (or no longer exists): the message may go."""
        return len(self.finished_objects) == self.expected and all(
            t.status in ("done", "gone", "set_aside") for t in self.finished_objects
        )


@dataclass(slots=True)
class BulkItem:
    """One encoded document on its way to the sink.

    ``position`` is the record's ordinal in its object and ``end`` the byte offset just
    past it in the decompressed stream (where a resume after it would start reading).
    """

    index: str
    doc_id: str
    source: bytes
    tracker: ObjectTracker
    position: int
    end: int = 0


def settle(items: Iterable[BulkItem], outcome: str) -> None:
    """Settle ``items`` with ``outcome``: one ``ObjectTracker.settle`` per object."""
    groups: dict[ObjectTracker, list[BulkItem]] = {}
    for item in items:
        groups.setdefault(item.tracker, []).append(item)
    for tracker, group in groups.items():
        tracker.settle(outcome, group)
    crash_point("after_es_ack")
