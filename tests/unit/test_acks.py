"""Ack tracking: objects and messages finish only when everything is settled."""

from __future__ import annotations

from s3lb.acks import BulkItem, MessageTracker, ObjectTracker
from s3lb.model import ObjectRef

REF = ObjectRef("b", "k", "e")


def items(tracker: ObjectTracker, *positions: int) -> list[BulkItem]:
    return [BulkItem("i", str(p), b"{}", tracker, p, p * 10) for p in positions]


def test_ack_counter_touching_zero_mid_object_does_not_finish_it() -> None:
    finished: list[ObjectTracker] = []
    tracker = ObjectTracker(REF, finished.append)
    tracker.add(2)
    # All sent so far are acked, but reading goes on.
    tracker.settle("indexed", items(tracker, 1, 2))
    assert finished == [] and tracker.status == "reading"
    tracker.add(1)
    tracker.finish_reading()
    assert finished == [] and tracker.status == "acking"
    tracker.settle("duplicate", items(tracker, 3))
    assert finished == [tracker] and tracker.status == "done"


def test_an_empty_object_is_done_when_read() -> None:
    finished: list[ObjectTracker] = []
    tracker = ObjectTracker(REF, finished.append)
    tracker.finish_reading()
    assert finished == [tracker] and tracker.status == "done"


def test_a_message_is_deletable_only_when_every_object_is_done_or_gone() -> None:
    done: list[MessageTracker] = []
    message = MessageTracker("m", 3, done.append)
    objects = [ObjectTracker(REF, message.object_finished) for _ in range(3)]
    objects[0].finish_reading()
    objects[1].fail("NoSuchKey", gone=True)
    assert done == []
    objects[2].finish_reading()
    assert done == [message] and message.deletable


def test_a_failed_object_keeps_its_message() -> None:
    done: list[MessageTracker] = []
    message = MessageTracker("m", 2, done.append)
    first, second = (ObjectTracker(REF, message.object_finished) for _ in range(2))
    first.finish_reading()
    second.add(5)
    second.fail("corrupt gzip")
    assert done == [message] and not message.deletable
    # Late acks of the failed object change nothing.
    second.settle("indexed", items(second, 1, 2, 3, 4, 5))
    assert len(done) == 1


def test_records_passed_over_report_progress_so_their_watermark_is_checkpointed() -> None:
    """Issue 16.6: blank and dead-lettered lines advance the watermark like acks, and
    the checkpointer hears of it (before, only sink acks reported progress)."""
    from s3lb.acks import Watermark

    progressed: list[int] = []
    tracker = ObjectTracker(
        REF, lambda _t: None, on_progress=lambda t: progressed.append(t.watermark.acked)
    )
    tracker.watermark = Watermark()
    for position in (1, 2, 3):
        tracker.pass_over(position, position * 10)
    assert progressed == [1, 2, 3]
    tracker.pass_over(5, 50)  # beyond a gap: no new prefix, nothing to commit
    assert progressed == [1, 2, 3]


def test_an_object_put_aside_lets_its_message_go_while_a_failed_one_keeps_it() -> None:
    done: list[MessageTracker] = []
    message = MessageTracker("m", 1, done.append)
    tracker = ObjectTracker(REF, message.object_finished)
    tracker.put_aside("no format")
    assert done == [message] and message.deletable and tracker.status == "set_aside"
    kept = MessageTracker("k", 1, done.append)
    ObjectTracker(REF, kept.object_finished).fail("corrupt gzip")
    assert not kept.deletable
