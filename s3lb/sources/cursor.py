"""The listing cursor of an import job: the contiguous finished prefix of its listing
(pure, synchronous).

Keys finish out of order (several readers). :class:`ListingCursor` keeps the listing
order and moves ``last_key`` only past keys that are all finished, done or failed, like
an acknowledgement watermark: a rerun that lists again after ``last_key`` misses nothing.
"""

from __future__ import annotations

from collections import deque

__all__ = ["CursorEntry", "ListingCursor"]


class CursorEntry:
    """A listed key handed out (or a run of keys found done): open until finished."""

    __slots__ = ("done", "failed", "key", "open", "passed_before")

    def __init__(self, key: str, passed_before: str) -> None:
        self.key = key
        #: The last key listed (and passed over) between the previous entry and this one.
        self.passed_before = passed_before
        self.open = True
        self.done = 0
        self.failed = 0


class ListingCursor:
    """The contiguous finished prefix of a job's listing.

    Keys are :meth:`add` ed in listing order and :meth:`finish` ed in any order;
    :meth:`advance` moves ``last_key`` to the highest key such that every key up to it
    is finished (done or failed) or was passed over (outside the window), and adds the
    passed entries to the ``done`` / ``failed`` counts.
    """

    def __init__(self, last_key: str = "", done: int = 0, failed: int = 0) -> None:
        self.last_key = last_key
        self.done = done
        self.failed = failed
        self._entries: deque[CursorEntry] = deque()
        self._passed = ""

    @property
    def pending(self) -> int:
        """Entries not yet behind ``last_key`` (unfinished, or finished out of order)."""
        return len(self._entries)

    def pass_over(self, key: str) -> None:
        """``key`` was listed and needs nothing (outside the window)."""
        if self._entries:
            self._passed = key
        else:
            self.last_key = key

    def add(self, key: str) -> CursorEntry:
        """``key`` was handed out; :meth:`finish` its entry when it is over."""
        entry = CursorEntry(key, self._passed)
        self._passed = ""
        self._entries.append(entry)
        return entry

    def add_done(self, key: str) -> None:
        """``key`` was found already done: finished as soon as listed."""
        if not self._entries:
            self.last_key = key
            self.done += 1
            return
        tail = self._entries[-1]
        if not tail.open:  # coalesce runs of finished keys: memory stays small
            tail.key = key
            tail.done += 1
            self._passed = ""
            return
        entry = self.add(key)
        entry.open = False
        entry.done = 1

    def finish(self, entry: CursorEntry, *, failed: bool = False) -> None:
        """The object of ``entry`` is over: done (or gone) or ``failed``."""
        if not entry.open:
            return
        entry.open = False
        if failed:
            entry.failed += 1
        else:
            entry.done += 1

    def advance(self) -> bool:
        """Move ``last_key`` past every finished entry at the head; True if it moved."""
        before = self.last_key
        entries = self._entries
        while entries and not entries[0].open:
            entry = entries.popleft()
            self.last_key = entry.key
            self.done += entry.done
            self.failed += entry.failed
        if entries:
            if entries[0].passed_before > self.last_key:
                self.last_key = entries[0].passed_before
        elif self._passed:
            self.last_key = max(self.last_key, self._passed)
            self._passed = ""
        return self.last_key != before
