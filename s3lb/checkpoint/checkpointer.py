"""Checkpoints of the pipeline: object watermarks written to the LMDB store.

Trackers report progress (:meth:`Checkpointer.progressed`) as the sink settles their
items; the :meth:`Checkpointer.run` task coalesces whatever advanced since its last
commit into one durable transaction, so a burst of acknowledged bulk batches costs
one commit, and LMDB works in a thread, off the trio loop. Final states (``done``,
``failed``) go into the same coalesced commits through :meth:`Checkpointer.finish`,
which returns once they are durable, *before* a message is deleted: a crash between
the two finds the object done and deletes without re-sending.
"""

from __future__ import annotations

from collections.abc import Iterable

import trio

from s3lb.acks import ObjectTracker
from s3lb.checkpoint import CheckpointStore, ObjectState, RecordCounts, Status
from s3lb.crashpoints import crash_point
from s3lb.errors import CheckpointCorrupt, CheckpointError, CheckpointFull
from s3lb.telemetry import Telemetry

__all__ = ["Checkpointer", "state_of"]


def state_of(tracker: ObjectTracker) -> ObjectState:
    """The checkpoint of ``tracker``'s object as it stands."""
    ref, mark = tracker.ref, tracker.watermark
    status = tracker.status
    stored: Status = (
        "done"
        if status in ("done",)
        else "failed"
        if status in ("failed", "gone", "set_aside")
        else "in_progress"
    )
    counts = tracker.counts
    return ObjectState(
        bucket=ref.bucket,
        key=ref.key,
        version=ref.identity,
        status=stored,
        acked=mark.acked if mark is not None else 0,
        offset=mark.offset if (mark is not None and tracker.plain) else -1,
        total=tracker.total,
        records=RecordCounts(
            indexed=counts["indexed"],
            duplicate=counts["duplicate"],
            rejected=counts["rejected"],
            parse_failed=counts["parse_failed"],
        ),
        error=tracker.failure,
        beyond=mark.beyond() if mark is not None else [],
    )


class Checkpointer:
    """Writes watermarks as they advance and final states when objects finish."""

    def __init__(self, store: CheckpointStore, telemetry: Telemetry) -> None:
        self.store = store
        self.telemetry = telemetry
        self._dirty: dict[ObjectTracker, None] = {}
        self._wake = trio.Event()
        self._broken = False
        # Progress reports so far, and how many of them the last commit covered.
        self._reported = 0
        self._durable = 0
        self._durable_changed = trio.Event()

    def progressed(self, tracker: ObjectTracker) -> None:
        """A tracker's watermark may have advanced (called from the sink, sync)."""
        self._dirty[tracker] = None
        self._reported += 1
        self._wake.set()

    async def wait_durable(self) -> None:
        """Return once every progress reported so far is committed. A bulk worker waits
        here before its next batch, so at most one batch per worker is ever acknowledged
        and not yet durable: the bound on what a kill -9 makes us send again."""
        target = self._reported
        while self._durable < target:
            await self._durable_changed.wait()

    async def run(self) -> None:
        """Commit advanced watermarks until cancelled."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            await self.flush()

    async def flush(self) -> None:
        """Commit every watermark that advanced since the last commit."""
        covered = self._reported
        trackers = [t for t in self._dirty if t.watermark is not None and t.ref.identity]
        self._dirty.clear()
        try:
            # Finished ones too: acks that arrive after an object failed still count.
            await self._commit(state_of(t) for t in trackers)
        except BaseException:
            # Cancelled mid-commit (shutdown): the final, shielded flush writes them.
            self._dirty.update(dict.fromkeys(trackers))
            raise
        self._durable = max(self._durable, covered)
        changed, self._durable_changed = self._durable_changed, trio.Event()
        changed.set()

    async def finish(self, trackers: Iterable[ObjectTracker]) -> None:
        """Commit the final state of finished objects (before their message goes): they
        join the next coalesced commit of :meth:`run` (one fsync shared with the
        watermarks and other finished objects), and this returns once it is durable."""
        added = 0
        for tracker in trackers:
            if tracker.watermark is not None and tracker.ref.identity:
                self._dirty[tracker] = None
                added += 1
        if added:
            self._reported += 1
            self._wake.set()
            await self.wait_durable()

    async def _commit(self, states: Iterable[ObjectState]) -> None:
        batch = list(states)
        if not batch:
            return
        crash_point("before_ckpt_commit")
        try:
            await self.store.commit(batch)
        except (CheckpointFull, CheckpointCorrupt):
            raise  # the daemon stops; the error says how to recover (bigger map, quarantine)
        except CheckpointError as exc:
            # Delivery goes on without checkpoints (ids stay stable: a restart re-sends and
            # the cluster answers 409); the operator is told once, loudly.
            self.telemetry.count("checkpoint_errors")
            if not self._broken:
                self._broken = True
                self.telemetry.error(
                    "checkpoint commit failed; continuing without", reason=str(exc)
                )
            return
        self.telemetry.count("checkpoint_commits")
        crash_point("after_ckpt_commit")
