"""The contiguous acknowledgement watermark of one object. Pure and synchronous.

Records of an object are numbered 1, 2, 3… Bulk acknowledgements arrive in any order;
only the longest prefix of positions that are *all* acknowledged may be checkpointed,
because a resume restarts just past it. :class:`Watermark` keeps the positions acked
ahead of a gap aside and advances the prefix when the gap fills.

Every position must be acked exactly once from the watermark's point of view, whether
it went to the sink or not: the reader acks the positions it skips itself (header
lines, blank lines), so a skipped record never holds the watermark back.
"""

from __future__ import annotations

from typing import final

__all__ = ["Watermark"]


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
