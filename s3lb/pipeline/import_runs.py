"""Import jobs during a run: each job's listing cursor and failures, the statistics an
import reports, and the committer that persists finished objects and advanced cursors
together."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import trio

from s3lb.acks import ObjectTracker
from s3lb.checkpoint import CheckpointStore, ImportCursor
from s3lb.checkpoint.checkpointer import state_of
from s3lb.errors import CheckpointCorrupt, CheckpointError, CheckpointFull
from s3lb.pipeline.import_jobs import ImportJob
from s3lb.sources import ListingCursor
from s3lb.telemetry import Telemetry

__all__ = [
    "Committer",
    "ImportStatistics",
    "JobRun",
    "JobStatistics",
    "merge_statistics",
    "open_runs",
]

#: Failed objects kept by name for the statistics (all are counted).
SHOWN_FAILURES = 20


@dataclass(frozen=True, slots=True)
class JobStatistics:
    """Where one job stands: its cursor as it would be committed, and this run's
    failures."""

    id: str
    complete: bool
    #: Objects behind the cursor, done or failed (this run and earlier ones).
    done: int
    failed: int
    last_key: str
    #: Why the job stopped before the end of its listing ("" when it did not).
    error: str = ""
    #: Objects that failed in this run, and the first :data:`SHOWN_FAILURES` by name.
    failed_objects: int = 0
    failures: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ImportStatistics:
    """Counts of an import so far (objects in the window only)."""

    listed: int = 0
    listed_bytes: int = 0
    #: Read and indexed (or enqueued) in this run.
    finished: int = 0
    finished_bytes: int = 0
    #: Found done by their checkpoints: not sent again.
    skipped: int = 0
    skipped_bytes: int = 0
    failed: int = 0
    events_indexed: int = 0
    #: Every job's listing went to its end (or stopped).
    listing_done: bool = False
    jobs: tuple[JobStatistics, ...] = ()
    #: The run is over and was not cut short: these counts are final.
    ended: bool = False
    #: A signal stopped the run before every job was complete: the next run continues.
    interrupted: bool = False


def merge_statistics(parts: Sequence[ImportStatistics]) -> ImportStatistics:
    """The statistics of several worker processes as one import's: counts summed, every
    share's jobs, listing done and ended when all are, interrupted when one was."""
    counts = {
        f.name: sum(getattr(part, f.name) for part in parts)
        for f in dataclasses.fields(ImportStatistics)
        if f.type == "int"
    }
    return ImportStatistics(
        **counts,
        listing_done=all(part.listing_done for part in parts),
        jobs=tuple(job for part in parts for job in part.jobs),
        ended=all(part.ended for part in parts),
        interrupted=any(part.interrupted for part in parts),
    )


@dataclass(eq=False)
class JobRun:
    """One job during this run: its cursor, and what happened."""

    job: ImportJob
    cursor: ListingCursor
    committed: ImportCursor | None
    listing_done: bool = False
    error: str = ""
    failures: list[tuple[str, str]] = field(default_factory=list)
    failed_count: int = 0

    def snapshot(self) -> ImportCursor:
        return ImportCursor(
            job=self.job.id,
            last_key=self.cursor.last_key,
            done=self.cursor.done,
            failed=self.cursor.failed,
            complete=self.listing_done and not self.cursor.pending and not self.error,
        )

    def record_failure(self, what: str, reason: str) -> None:
        self.failed_count += 1
        if len(self.failures) < SHOWN_FAILURES:
            self.failures.append((what, reason))

    def statistics(self) -> JobStatistics:
        snapshot = self.snapshot()
        return JobStatistics(
            id=self.job.id,
            complete=snapshot.complete,
            done=snapshot.done,
            failed=snapshot.failed,
            last_key=snapshot.last_key,
            error=self.error,
            failed_objects=self.failed_count,
            failures=tuple(self.failures),
        )


class Committer:
    """Commits final object states and advanced cursors, in one transaction each time."""

    def __init__(self, store: CheckpointStore, telemetry: Telemetry, runs: Sequence[JobRun]):
        self.store = store
        self.telemetry = telemetry
        self.runs = runs
        self._trackers: list[ObjectTracker] = []
        self._wake = trio.Event()
        self._advanced = trio.Event()
        self._lock = trio.Lock()
        self._broken = False

    def finished(self, tracker: ObjectTracker) -> None:
        """A tracker reached its final state (sync: called from the sink or a reader)."""
        self._trackers.append(tracker)
        self._wake.set()

    def wake(self) -> None:
        """Something else moved (a cursor, the end of a listing): commit soon."""
        self._wake.set()

    async def wait_advanced(self) -> None:
        """Wait for the next commit."""
        await self._advanced.wait()

    async def run(self) -> None:
        """Commit whenever something finished (and every few seconds) until cancelled."""
        while True:
            with trio.move_on_after(5):
                await self._wake.wait()
            self._wake = trio.Event()
            await self.flush()

    async def flush(self) -> None:
        """Commit what finished and every cursor that moved since the last commit."""
        # Shielded: cancelled between taking the finished trackers and committing them,
        # their done marks would be lost while the cursor (committed later) passes them.
        async with self._lock:
            with trio.CancelScope(shield=True):
                await self._flush()

    async def _flush(self) -> None:
        trackers, self._trackers = self._trackers, []
        states = [state_of(t) for t in trackers if t.watermark is not None and t.ref.identity]
        cursors = []
        for run in self.runs:
            run.cursor.advance()
            snapshot = run.snapshot()
            if snapshot != run.committed:
                cursors.append((run, snapshot))
        if states or cursors:
            try:
                await self.store.commit(states, [c for _, c in cursors])
            except (CheckpointFull, CheckpointCorrupt):
                raise
            except CheckpointError as exc:
                self.telemetry.count("checkpoint_errors")
                if not self._broken:
                    self._broken = True
                    self.telemetry.error(
                        "checkpoint commit failed; the import goes on, but a rerun "
                        "will list again from the last committed key",
                        reason=str(exc),
                    )
            else:
                self.telemetry.count("checkpoint_commits")
                for run, snapshot in cursors:
                    run.committed = snapshot
        self._advanced.set()
        self._advanced = trio.Event()


async def open_runs(
    store: CheckpointStore, jobs: Sequence[ImportJob], telemetry: Telemetry, *, restart: bool
) -> list[JobRun]:
    """The runs of ``jobs``, each from its stored cursor (unless ``restart``): a complete
    job is not listed again; a job with failed objects lists its window again; any other
    resumes after its cursor."""
    runs = []
    for job in jobs:
        stored = await store.get_cursor(job.id)
        cursor = ListingCursor()
        if stored is not None and not restart:
            if stored.complete and not stored.failed:
                telemetry.info(
                    "import job already complete; nothing to do",
                    job=job.id,
                    done=stored.done,
                )
                cursor = ListingCursor(stored.last_key, stored.done)
                run = JobRun(job, cursor, _unstamped(stored))
                run.listing_done = True
                runs.append(run)
                continue
            if stored.failed:
                # Failed objects lie behind the cursor: list the window again; done
                # objects are skipped from their checkpoints.
                telemetry.info(
                    "import job had failed objects; listing its window again to retry them",
                    job=job.id,
                    failed=stored.failed,
                )
            else:
                cursor = ListingCursor(stored.last_key, stored.done, 0)
                telemetry.info(
                    "import job resumes after its cursor",
                    job=job.id,
                    last_key=stored.last_key,
                    done=stored.done,
                )
        runs.append(JobRun(job, cursor, _unstamped(stored)))
    return runs


def _unstamped(cursor: ImportCursor | None) -> ImportCursor | None:
    # Compared with fresh snapshots, whose ``updated`` is stamped by the store.
    return None if cursor is None else msgspec.structs.replace(cursor, updated=0.0)
