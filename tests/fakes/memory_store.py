"""The checkpoint store's API over a dict, with the real merge rule."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import trio

from s3lb.checkpoint import ObjectState
from s3lb.checkpoint.records import merge_states
from tests.fakes.seq import Seq

__all__ = ["MemoryStore"]


class MemoryStore:
    """The :class:`~s3lb.checkpoint.CheckpointStore` API over a dict, using the real
    merge rule (:func:`~s3lb.checkpoint.records.merge_states`). Every commit is stamped
    with :class:`Seq` and shown to each of :attr:`observers` (I5 is checked there).
    """

    def __init__(self, seq: Seq | None = None) -> None:
        self.seq = seq or Seq()
        self.states: dict[tuple[str, str, str], ObjectState] = {}
        self.history: list[tuple[float, ObjectState]] = []
        self.observers: list[Callable[[ObjectState], None]] = []
        self.quarantined: Path | None = None
        self.path = Path("/memory/checkpoint")

    async def get(self, bucket: str, key: str, version: str) -> ObjectState | None:
        await trio.lowlevel.checkpoint()
        return self.states.get((bucket, key, version))

    async def commit(
        self,
        states: Iterable[ObjectState] = (),
        cursors: Iterable[Any] = (),
        *,
        now: float | None = None,
    ) -> None:
        batch = list(states)
        await trio.lowlevel.checkpoint()
        stamp = time.time() if now is None else now
        for state in batch:
            k = (state.bucket, state.key, state.version)
            merged = merge_states(self.states.get(k), state, stamp)
            self.states[k] = merged
            self.history.append((self.seq(), merged))
            for observe in self.observers:
                observe(merged)

    async def prune(self, older_than: float, statuses: Iterable[str] = ("done", "failed")) -> int:
        await trio.lowlevel.checkpoint()
        return 0

    async def objects(self) -> list[ObjectState]:
        return list(self.states.values())

    def done_seq(self, bucket: str, key: str, version: str) -> float | None:
        """When the object was first committed ``done``."""
        for stamp, state in self.history:
            if (state.bucket, state.key, state.version, state.status) == (
                bucket,
                key,
                version,
                "done",
            ):
                return stamp
        return None
