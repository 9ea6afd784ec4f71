"""R22: a Hypothesis state machine over the pure pieces of the delivery chain.

``ObjectTracker`` / ``MessageTracker`` (acks), ``Watermark`` and the checkpoint record
(``state_of`` merged by ``merge_states``, round-tripped through msgpack) under random
interleavings of reads, outcomes, read failures, commits and crashes. The stored
watermark and the ``done`` mark are checked after every step. (``Watermark`` alone and
the LMDB store alone have their own models in tests/unit.)
"""

from __future__ import annotations

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from s3lb.acks import BulkItem, MessageTracker, ObjectTracker, Watermark
from s3lb.checkpoint import ObjectState
from s3lb.checkpoint.checkpointer import state_of
from s3lb.checkpoint.records import merge_states
from s3lb.model import ObjectRef

_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder(ObjectState).decode
OUTCOMES = ("indexed", "duplicate", "rejected")


@settings(max_examples=60, stateful_step_count=50, deadline=None)
class DeliveryChainModel(RuleBasedStateMachine):
    """One message naming a few objects; records are read, settled out of order,
    checkpointed, and the process may crash and resume from the store at any step.

    Checked after every step: the stored watermark never exceeds the longest settled
    prefix (I5) and never decreases; ``done`` is stored only once the object was read to
    its end with every record settled, and stays done; the message finishes only when
    every object has, and is deletable only if none failed; a stored state survives a
    msgpack round trip unchanged.
    """

    @initialize(sizes=st.lists(st.integers(0, 12), min_size=1, max_size=3), data=st.data())
    def start(self, sizes: list[int], data: st.DataObject) -> None:
        self.sizes = sizes
        #: Positions that carry no document (headers, blanks): settled by the reader.
        self.headers = [
            set(data.draw(st.sets(st.integers(1, max(n, 1)), max_size=2))) & set(range(1, n + 1))
            for n in sizes
        ]
        self.refs = [ObjectRef("b", f"k{i}", "etag") for i in range(len(sizes))]
        self.stored: dict[str, ObjectState] = {}
        self.settled: list[set[int]] = [set() for _ in sizes]  # survives crashes (the cluster)
        self.last_acked = [0] * len(sizes)
        self.was_done = [False] * len(sizes)
        self.boot()

    def boot(self) -> None:
        """(Re)start: fresh trackers resuming from the store, like a redelivery."""
        self.finished: list[MessageTracker] = []
        self.message = MessageTracker("m", len(self.sizes), self.finished.append)
        self.trackers: list[ObjectTracker] = []
        self.next: list[int] = []
        self.in_flight: list[set[int]] = []
        self.skip_all = [False] * len(self.sizes)
        for i, ref in enumerate(self.refs):
            state = self.stored.get(ref.key)
            tracker = ObjectTracker(ref, self.message.object_finished)
            if state is not None and state.status == "done":
                self.skip_all[i] = True
                tracker.watermark = Watermark(state.acked, state.offset)
                self.next.append(self.sizes[i] + 1)
            else:
                acked = state.acked if state else 0
                tracker.watermark = Watermark(acked, 0 if acked == 0 else acked * 10)
                tracker.plain = True
                self.next.append(acked + 1)
            self.trackers.append(tracker)
            self.in_flight.append(set())
        for i, tracker in enumerate(self.trackers):
            if self.skip_all[i]:
                tracker.finish_reading()  # already done: the reader sends nothing

    def _item(self, i: int, position: int) -> BulkItem:
        return BulkItem("idx", f"{i}-{position}", b"{}", self.trackers[i], position, position * 10)

    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, len(self.sizes) - 1))
        tracker = self.trackers[i]
        if tracker.finished or not tracker.reading:
            return
        position = self.next[i]
        if position > self.sizes[i]:
            tracker.total = self.sizes[i]
            tracker.finish_reading()
            return
        self.next[i] += 1
        if position in self.headers[i]:
            tracker.pass_over(position, position * 10)
            self.settled[i].add(position)
        else:
            tracker.add(1)
            self.in_flight[i].add(position)

    @precondition(lambda self: any(self.in_flight))
    @rule(data=st.data(), outcome=st.sampled_from(OUTCOMES))
    def settle(self, data: st.DataObject, outcome: str) -> None:
        i = data.draw(st.sampled_from([n for n, f in enumerate(self.in_flight) if f]))
        position = data.draw(st.sampled_from(sorted(self.in_flight[i], reverse=True)))
        self.in_flight[i].discard(position)
        self.settled[i].add(position)
        self.trackers[i].settle(outcome, [self._item(i, position)])

    @rule(data=st.data())
    def read_breaks(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, len(self.sizes) - 1))
        if self.trackers[i].reading and not self.trackers[i].finished:
            self.trackers[i].fail("connection reset")

    @rule()
    def commit(self) -> None:
        for tracker in self.trackers:
            if tracker.ref.identity:
                state = state_of(tracker)
                old = self.stored.get(tracker.ref.key)
                merged = merge_states(old, state, 1.0)
                assert _DECODE(_ENCODE(merged)) == merged
                self.stored[tracker.ref.key] = merged

    @rule()
    def crash(self) -> None:
        self.boot()

    @invariant()
    def stored_watermarks_are_safe_and_monotonic(self) -> None:
        for i, ref in enumerate(getattr(self, "refs", [])):
            state = self.stored.get(ref.key)
            if state is None:
                continue
            prefix = 0
            while prefix + 1 in self.settled[i]:
                prefix += 1
            assert state.acked <= prefix, (state.acked, prefix)
            assert state.acked >= self.last_acked[i]
            self.last_acked[i] = state.acked
            if self.was_done[i]:
                assert state.status == "done", "a done object was reopened"
            if state.status == "done":
                assert state.acked == self.sizes[i], "done before every record settled"
                self.was_done[i] = True

    @invariant()
    def trackers_finish_only_when_read_and_settled(self) -> None:
        for tracker in getattr(self, "trackers", []):
            if tracker.status == "done":
                assert not tracker.reading and tracker.settled == tracker.sent
            if tracker.finished:
                assert tracker.failure or (not tracker.reading and tracker.settled == tracker.sent)
            if tracker.watermark is not None and tracker.status == "done":
                assert tracker.watermark.acked == self.sizes[self.trackers.index(tracker)]

    @invariant()
    def the_message_finishes_with_its_objects(self) -> None:
        if not hasattr(self, "trackers"):
            return
        all_finished = all(t.finished for t in self.trackers)
        assert bool(self.finished) == all_finished
        assert len(self.finished) <= 1
        if self.finished:
            deletable = all(t.status in ("done", "gone") for t in self.trackers)
            assert self.message.deletable == deletable


TestDeliveryChainModel = DeliveryChainModel.TestCase
