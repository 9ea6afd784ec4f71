"""Async facade over :class:`~s3lb.checkpoint._lmdb.LmdbStore` for the trio daemon.

Commits, scans and prunes run in ``trio.to_thread.run_sync`` (an ``fsync`` per commit
must not stall the event loop); a read of one object's state runs on the loop: a
B-tree lookup in the mapped file takes microseconds, the thread hop ~25 times as long,
and every object a reader starts asks once. Writes go through one FIFO
:class:`trio.Lock`, so commits land in the order they were called: a later watermark is
never overwritten by an earlier one that happened to get a thread first. A commit that
already started is not abandoned on cancellation: it finishes (and is durable) before
``Cancelled`` surfaces.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, final

import trio

from s3lb.checkpoint._lmdb import DEFAULT_MAP_SIZE, PRUNE_BATCH, LmdbStore, OnCorrupt, Verify
from s3lb.checkpoint._open import open_store
from s3lb.checkpoint.records import ImportCursor, ObjectState, Status, StoreUsage

__all__ = ["CheckpointStatistics", "CheckpointStore", "open_checkpoint_store"]

T = TypeVar("T")

# Reads may run side by side; writes are serialized by the lock anyway.
_THREADS = 4


@dataclass(frozen=True, slots=True)
class CheckpointStatistics:
    """Counters of a :class:`CheckpointStore` since it was opened."""

    commits: int
    states_written: int
    commit_seconds_total: float
    commit_seconds_max: float


@final
class CheckpointStore:
    """The checkpoint store for async code. Create with :func:`open_checkpoint_store`."""

    def __init__(self, store: LmdbStore) -> None:
        self._store = store
        self._write_lock = trio.Lock()
        self._limiter = trio.CapacityLimiter(_THREADS)
        self._active = 0
        self._idle = trio.lowlevel.ParkingLot()
        self._closed = False
        self._commits = 0
        self._states_written = 0
        self._commit_total = 0.0
        self._commit_max = 0.0

    @property
    def path(self) -> Path:
        """The LMDB environment directory."""
        return self._store.path

    @property
    def quarantined(self) -> Path | None:
        """Where a corrupt store was moved when this one was opened, if it was."""
        return self._store.quarantined

    async def get(self, bucket: str, key: str, version: str) -> ObjectState | None:
        """The stored state of an object version, or None (read on the loop)."""
        if self._closed:
            raise trio.ClosedResourceError("the checkpoint store is closed")
        await trio.lowlevel.checkpoint()
        return self._store.get(bucket, key, version)

    async def commit(
        self,
        states: Iterable[ObjectState] = (),
        cursors: Iterable[ImportCursor] = (),
        *,
        now: float | None = None,
    ) -> None:
        """Write states and cursors in one durable transaction (see ``LmdbStore.commit``).

        Returns once the data is on disk. Raises ``CheckpointFull``,
        ``CheckpointCorrupt`` or ``CheckpointError``.
        """
        # Materialize here: the caller's iterable must not be consumed in a thread.
        batch, marks = list(states), list(cursors)
        if not batch and not marks:
            return
        async with self._write_lock:
            began = time.perf_counter()
            await self._run(functools.partial(self._store.commit, batch, marks, now=now))
            took = time.perf_counter() - began
        self._commits += 1
        self._states_written += len(batch)
        self._commit_total += took
        self._commit_max = max(self._commit_max, took)

    async def put_cursor(self, cursor: ImportCursor, *, now: float | None = None) -> None:
        """Store an import cursor durably."""
        await self.commit((), (cursor,), now=now)

    async def get_cursor(self, job: str) -> ImportCursor | None:
        """The cursor of import job ``job``, or None."""
        return await self._run(self._store.get_cursor, job)

    async def objects(self) -> list[ObjectState]:
        """Every stored object state."""
        return await self._run(self._store.objects)

    async def cursors(self) -> list[ImportCursor]:
        """Every stored import cursor."""
        return await self._run(self._store.cursors)

    async def prune(
        self, older_than: float, statuses: Collection[Status] = ("done", "failed")
    ) -> int:
        """Forget objects in ``statuses`` last updated before ``older_than``; returns how
        many. Runs in batches so that commits interleave with a long prune."""
        total, start = 0, b""
        while True:
            async with self._write_lock:
                deleted, resume = await self._run(
                    functools.partial(
                        self._store.prune_batch,
                        older_than,
                        statuses,
                        start=start,
                        limit=PRUNE_BATCH,
                    )
                )
            total += deleted
            if resume is None:
                return total
            start = resume

    async def usage(self) -> StoreUsage:
        """Map size, bytes in use and entry counts."""
        return await self._run(self._store.usage)

    def statistics(self) -> CheckpointStatistics:
        """Commit counters since open."""
        return CheckpointStatistics(
            commits=self._commits,
            states_written=self._states_written,
            commit_seconds_total=self._commit_total,
            commit_seconds_max=self._commit_max,
        )

    async def aclose(self) -> None:
        """Wait for running calls, then close the store (idempotent; shielded)."""
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            # Closing the environment under a thread still in a transaction would
            # crash the process; calls are short, so waiting is bounded.
            while self._active:
                await self._idle.park()
            self._store.close()

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise trio.ClosedResourceError("the checkpoint store is closed")
        self._active += 1
        try:
            return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)
        finally:
            self._active -= 1
            if not self._active:
                self._idle.unpark_all()


@asynccontextmanager
async def open_checkpoint_store(
    state_dir: str | os.PathLike[str],
    *,
    map_size: int = DEFAULT_MAP_SIZE,
    on_corrupt: OnCorrupt = "quarantine",
    verify: Verify = "isolated",
) -> AsyncIterator[CheckpointStore]:
    """Open the read-write store under ``state_dir`` for the duration of the block.

    Arguments and errors are those of :func:`~s3lb.checkpoint.open_store`; opening
    (which may check a large store) runs in a worker thread.
    """
    opened: list[LmdbStore] = []

    def _open() -> LmdbStore:
        store = open_store(state_dir, map_size=map_size, on_corrupt=on_corrupt, verify=verify)
        opened.append(store)
        return store

    try:
        store = await trio.to_thread.run_sync(_open)
    except BaseException:
        # Cancelled after the thread finished opening: don't leak the environment.
        for leaked in opened:
            leaked.close()
        raise
    facade = CheckpointStore(store)
    try:
        yield facade
    finally:
        await facade.aclose()
