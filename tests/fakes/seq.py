"""A shared stamp that orders the events of several fakes totally."""

from __future__ import annotations

import itertools

__all__ = ["Seq"]


class Seq:
    """A shared, strictly increasing stamp: every fake's events are totally ordered."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def __call__(self) -> float:
        return float(next(self._next))
