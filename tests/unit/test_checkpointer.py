"""The checkpointer on a real store: finished objects share the coalesced commits of
acknowledged progress, and are durable when ``finish`` returns."""

from __future__ import annotations

from pathlib import Path

import trio

from s3lb.acks import ObjectTracker, Watermark
from s3lb.checkpoint import open_checkpoint_store
from s3lb.checkpoint.checkpointer import Checkpointer
from s3lb.model import ObjectRef
from s3lb.telemetry import Telemetry


def finished(key: str) -> ObjectTracker:
    tracker = ObjectTracker(ObjectRef("b", key, "e"), lambda _t: None)
    tracker.watermark = Watermark()
    tracker.finish_reading()
    return tracker


async def test_objects_finished_together_are_durable_in_one_commit(tmp_path: Path) -> None:
    async with open_checkpoint_store(tmp_path) as store:
        checkpointer = Checkpointer(store, Telemetry())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(checkpointer.run)
            rounds = [[finished(f"k{r}-{i}") for i in range(10)] for r in range(5)]
            async with trio.open_nursery() as finishing:
                for trackers in rounds:
                    finishing.start_soon(checkpointer.finish, trackers)
            for trackers in rounds:
                for tracker in trackers:
                    stored = await store.get("b", tracker.ref.key, "e")
                    assert stored is not None and stored.status == "done"
            # Five callers, fifty objects: the first commit takes what was there, the
            # second everything that arrived while it ran.
            assert store.statistics().commits <= 2
            nursery.cancel_scope.cancel()
