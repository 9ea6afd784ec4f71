"""The SQS source: long-poll each queue, turn notifications into object tasks, and
delete a message only once every object it names is shipped.

- Each queue URL has its own poller. A poller receives only while fewer than
  ``max_inflight_messages`` messages are received and unfinished (across all queues),
  up to 10 at a time, and pauses ``poll_frequency`` after an empty receive.
- A message that names no new object (``s3:TestEvent``, ``ObjectRemoved``…) is deleted
  and counted. A body that cannot be decoded is logged with its queue and message id,
  counted, and left alone: it comes back after its visibility timeout and the queue's
  redrive policy moves it to a dead-letter queue.
- A record that cannot be decoded in a message that has good ones is written to the
  dead-letter store (a ``notification`` entry: queue, message id, record index, reason,
  the record's JSON), counted and logged before the message goes on; its good objects
  are delivered and the message is deleted once they are done. If the entry cannot be
  written, the message is left for the redrive policy instead.
- An object version (bucket, key, version id or ETag) already being read for another
  notification of the same input is not read again: its tracker follows the read in
  flight and finishes as it does (``objects_deduplicated``), so its message is deleted,
  or kept, with the first one's objects.
- A finished message is deleted when all its objects are done (or gone from S3). If
  one failed it is kept: it reappears after the visibility timeout, and the queue's
  redrive policy bounds the retries.
- Heartbeat: every received, unfinished message (queued or being processed) has its
  visibility extended at half the visibility timeout, so a large object is not
  redelivered mid-work; after ``max_hold`` it is released instead (visibility 0), so a
  broken cluster still lets messages reach the queue's dead-letter redrive. A refused
  extension (the handle expired) stops that message's heartbeat.
- At shutdown, messages still unfinished are released (visibility 0) so another
  instance, or the restarted one, takes them at once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import trio

from s3lb.acks import InFlightObjects, MessageTracker, ObjectTracker
from s3lb.aws.notifications import (
    Notification,
    RecordFailure,
    UndecodableMessage,
    decode_notification,
)
from s3lb.aws.sqs import Message, SqsClient, SqsError
from s3lb.checkpoint.checkpointer import Checkpointer
from s3lb.crashpoints import crash_point
from s3lb.deadletter import DeadLetter, entry
from s3lb.model import ObjectRef
from s3lb.retry import Backoff
from s3lb.sources.task import InputRuntime, ObjectTask
from s3lb.telemetry import Telemetry

__all__ = ["QueueInput", "SqsSource"]


def _batches(messages: list[Message]) -> list[list[Message]]:
    """``messages`` by queue, in batches of at most 10 (one DeleteMessageBatch each)."""
    by_queue: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        by_queue[message.queue_url].append(message)
    return [batch[i : i + 10] for batch in by_queue.values() for i in range(0, len(batch), 10)]


@dataclass(frozen=True, slots=True)
class QueueInput:
    """One queue to poll, with the input it belongs to."""

    queue_url: str
    region: str
    input: InputRuntime
    poll_frequency: float


class SqsSource:
    """Pollers, the in-flight budget, and message deletion."""

    def __init__(
        self,
        sqs: SqsClient,
        telemetry: Telemetry,
        max_inflight: int,
        wait_time: float,
        *,
        checkpointer: Checkpointer | None = None,
        visibility_timeout: float = 0,
        max_hold: float = 3600,
        dead_letter: DeadLetter | None = None,
    ) -> None:
        self.sqs = sqs
        #: Where undecodable records of good messages go (without one, such a message is
        #: left for the redrive policy whole).
        self.dead_letter = dead_letter
        self.telemetry = telemetry
        self.wait_time = wait_time
        self.checkpointer = checkpointer
        self.max_hold = max_hold
        self._visibility_override = visibility_timeout
        self._visibility: dict[str, float] = {}
        self._slots = trio.Semaphore(max_inflight)
        self._inflight: set[MessageTracker] = set()
        #: One read per object version in flight: later notifications follow it.
        self._reading = InFlightObjects()
        self._on_finished: Callable[[MessageTracker], None] = lambda _m: None

    @property
    def in_flight(self) -> int:
        """Messages received and not yet finished."""
        return len(self._inflight)

    @property
    def objects_in_flight(self) -> int:
        """Objects of in-flight messages that are not finished yet."""
        return sum(t.expected - len(t.finished_objects) for t in self._inflight)

    def open_finish_channel(self) -> trio.MemoryReceiveChannel[MessageTracker]:
        """Wire finished messages to the channel that :meth:`finish` consumes.
        Unbounded on purpose: at most ``max_inflight`` messages are ever in it."""
        send, receive = trio.open_memory_channel[MessageTracker](math.inf)
        self._finished_send = send
        self._on_finished = send.send_nowait
        return receive

    def close_finish_channel(self) -> None:
        """No message can finish any more (the readers and sink have stopped)."""
        self._finished_send.close()

    async def poll(self, queue: QueueInput, send: trio.MemorySendChannel[ObjectTask]) -> None:
        """Receive from ``queue`` until cancelled, sending object tasks to ``send``."""
        backoff = Backoff(1.0, 60.0)
        await self._learn_visibility(queue.queue_url)
        async with send:
            while True:
                await self._slots.acquire()
                taken = 1
                while taken < 10:
                    try:
                        self._slots.acquire_nowait()
                    except trio.WouldBlock:
                        break
                    taken += 1
                try:
                    messages = await self.sqs.receive(queue.queue_url, taken, self.wait_time)
                except SqsError as exc:
                    self._release_slots(taken)
                    self.telemetry.count("sqs_receive_errors")
                    if backoff.attempt == 0 or exc.code:
                        self.telemetry.warning(
                            "SQS receive failed; retrying with backoff",
                            queue=queue.queue_url,
                            reason=str(exc),
                        )
                    await backoff.sleep()
                    continue
                if backoff.attempt:
                    self.telemetry.info("SQS receive works again", queue=queue.queue_url)
                backoff.reset()
                self._release_slots(taken - len(messages))
                self.telemetry.count("messages_received", len(messages))
                # Every message of the batch is in flight (heartbeated) before the
                # first task waits for a reader.
                tasks: list[ObjectTask] = []
                nothing_new: list[Message] = []
                decoded = await self._decode_batch(queue, messages)
                for message, notification in decoded:
                    accepted = self._accept(queue, message, notification)
                    if accepted is None:
                        nothing_new.append(message)
                    else:
                        tasks += accepted
                if nothing_new:
                    await self._delete(nothing_new)
                    self._release_slots(len(nothing_new))
                for task in tasks:
                    await send.send(task)
                if not messages:
                    await trio.sleep(queue.poll_frequency)

    def _release_slots(self, n: int) -> None:
        for _ in range(n):
            self._slots.release()

    async def _decode_batch(
        self, queue: QueueInput, messages: list[Message]
    ) -> list[tuple[Message, Notification]]:
        """Decode each message; dead-letter the bad records of those that have good
        ones (one durable write for the batch). A message that cannot be decoded, or
        whose bad records cannot be kept, is left for the redrive policy (its slot
        freed); the others are returned."""
        decoded: list[tuple[Message, Notification]] = []
        for message in messages:
            notification = self._decode(message)
            if notification is not None:
                decoded.append((message, notification))
        failing = [(m, n) for m, n in decoded if n.failed]
        if not failing:
            return decoded
        problem = "no dead-letter store" if self.dead_letter is None else ""
        if self.dead_letter is not None:
            try:
                await self.dead_letter.write(
                    [self._entry(queue, m, f) for m, n in failing for f in n.failed]
                )
            except OSError as exc:
                problem = f"writing the dead-letter store failed: {exc}"
        for message, notification in failing:
            where = {"queue": queue.queue_url, "message_id": message.message_id}
            if problem:
                self._undecodable(message, f"{notification.failed[0].reason} ({problem})")
                continue
            self.telemetry.count("records_undecodable", len(notification.failed))
            for failure in notification.failed:
                self.telemetry.warning(
                    "notification record cannot be decoded; dead-lettered, the message's "
                    "other records are delivered",
                    record=failure.index,
                    reason=failure.reason,
                    **where,
                )
        if problem:
            decoded = [(m, n) for m, n in decoded if not n.failed]
        return decoded

    @staticmethod
    def _entry(queue: QueueInput, message: Message, failure: RecordFailure) -> bytes:
        return entry(
            "notification",
            failure.reason,
            ObjectRef("", ""),
            failure.index,
            queue=queue.queue_url,
            message_id=message.message_id,
            record=failure.index,
            raw=failure.record,
        )

    def _decode(self, message: Message) -> Notification | None:
        """The message's notification, or None when it cannot be decoded (left for
        the redrive policy, its slot freed)."""
        try:
            return decode_notification(message.body)
        except Exception as exc:
            # Each message is judged alone: whatever its body does to the decoder, it is
            # left for the redrive policy and the rest of its batch goes on.
            reason = exc.reason if isinstance(exc, UndecodableMessage) else repr(exc)
            self._undecodable(message, reason)
            return None

    def _undecodable(self, message: Message, reason: str) -> None:
        self._slots.release()
        self.telemetry.count("messages_undecodable")
        self.telemetry.warning(
            "message cannot be decoded; left for the queue's redrive policy",
            reason=reason,
            receive_count=message.receive_count,
            queue=message.queue_url,
            message_id=message.message_id,
        )

    def _accept(
        self, queue: QueueInput, message: Message, notification: Notification
    ) -> list[ObjectTask] | None:
        """Put ``message`` in flight (heartbeats start now); return its object tasks,
        or None when it names no new object (to delete)."""
        where = {"queue": queue.queue_url, "message_id": message.message_id}
        if notification.ignored:
            self.telemetry.count("records_ignored", len(notification.ignored))
        if not notification.objects:
            self.telemetry.count("messages_ignored")
            self.telemetry.info(
                "message names no new object; deleted",
                ignored=",".join(notification.ignored),
                **where,
            )
            return None
        now = trio.current_time()
        tracker = MessageTracker(
            message,
            len(notification.objects),
            self._on_finished,
            received_at=now,
            extend_at=now + self._visibility_of(message.queue_url) / 2,
        )
        self._inflight.add(tracker)
        progressed = self.checkpointer.progressed if self.checkpointer else lambda _t: None
        tasks = []
        for ref in notification.objects:
            self.telemetry.notification_lag(ref.event_time)
            object_tracker = ObjectTracker(ref, tracker.object_finished, on_progress=progressed)
            version = (queue.input.name, ref.bucket, ref.key, ref.identity)
            if ref.identity and not self._reading.admit(version, object_tracker):
                self.telemetry.count("objects_deduplicated")  # it follows the read in flight
                continue
            tasks.append(ObjectTask(ref, queue.input, object_tracker, queue.region))
        return tasks

    async def finish(self, receive: trio.MemoryReceiveChannel[MessageTracker]) -> None:
        """Delete (or keep) finished messages until ``receive`` is closed and drained.

        Each round takes every message finished so far (nothing waits for more), makes
        their done marks durable in one commit, and deletes them in batches of 10 side
        by side; what finishes meanwhile makes the next round."""
        async with receive:
            while True:
                try:
                    ready = [await receive.receive()]
                except trio.EndOfChannel:
                    return
                while True:
                    try:
                        ready.append(receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                deletable = await self._settle(ready)
                self._release_slots(len(ready) - len(deletable))
                async with trio.open_nursery() as deleting:
                    for batch in _batches(deletable):
                        deleting.start_soon(self._delete_batch, batch)

    async def _settle(self, trackers: list[MessageTracker]) -> list[Message]:
        """Commit the done marks of ``trackers``; the messages to delete."""
        if self.checkpointer is not None:
            # The done marks are durable before any delete: a crash in between finds
            # the objects done and deletes the redelivered message without re-sending.
            await self.checkpointer.finish(o for t in trackers for o in t.finished_objects)
            crash_point("after_done_mark")
        deletable = []
        for tracker in trackers:
            self._inflight.discard(tracker)
            self._log_objects(tracker)
            if tracker.deletable:
                deletable.append(tracker.message)
            else:
                self.telemetry.count("messages_kept")
                failed = [t for t in tracker.finished_objects if t.status == "failed"]
                self.telemetry.warning(
                    "message kept for redelivery: an object failed",
                    queue=tracker.message.queue_url,
                    message_id=tracker.message.message_id,
                    failed=",".join(str(t.ref) for t in failed),
                )
        return deletable

    def _log_objects(self, tracker: MessageTracker) -> None:
        for obj in tracker.finished_objects:
            if obj.status == "done" and obj.leader is None:  # a follower read nothing
                self.telemetry.count("objects_done")
                self.telemetry.info(
                    "object done",
                    bucket=obj.ref.bucket,
                    key=obj.ref.key,
                    events=obj.sent,
                    **{k: v for k, v in obj.counts.items() if k != "indexed" and v},
                )

    async def _delete(self, messages: list[Message]) -> None:
        for batch in _batches(messages):
            await self._delete_batch(batch, release=False)

    async def _delete_batch(self, batch: list[Message], release: bool = True) -> None:
        """DeleteMessageBatch (one queue, ≤ 10), retried 3 times; then free their slots."""
        try:
            crash_point("before_delete")
            backoff = Backoff(1.0, 10.0)
            for attempt in range(3):
                try:
                    with trio.fail_after(30):
                        failed = await self.sqs.delete_batch(batch)
                except (SqsError, trio.TooSlowError) as exc:
                    self.telemetry.warning(
                        "SQS delete failed; retrying", reason=str(exc), attempt=attempt + 1
                    )
                    await backoff.sleep()
                    continue
                self.telemetry.count("messages_deleted", len(batch) - len(failed))
                for message, why in failed:
                    # Usually an expired receipt handle: the message comes back and its
                    # documents are absorbed by their stable ids.
                    self.telemetry.warning(
                        "SQS delete refused; the message will be redelivered",
                        message_id=message.message_id,
                        reason=why,
                    )
                break
        finally:
            if release:
                self._release_slots(len(batch))

    async def _learn_visibility(self, queue_url: str) -> None:
        if self._visibility_override:
            self._visibility[queue_url] = self._visibility_override
            return
        try:
            attributes = await self.sqs.attributes(queue_url, ["VisibilityTimeout"])
            self._visibility[queue_url] = float(attributes.get("VisibilityTimeout", 30))
        except SqsError as exc:
            self.telemetry.warning(
                "cannot read the queue's visibility timeout; assuming 30s",
                queue=queue_url,
                reason=str(exc),
            )
            self._visibility[queue_url] = 30.0

    def _visibility_of(self, queue_url: str) -> float:
        return self._visibility.get(queue_url, 30.0)

    async def keep_visible(self) -> None:
        """Heartbeat: extend in-flight messages at half their visibility timeout, and
        release those held longer than ``max_hold``. Runs until cancelled."""
        while True:
            await trio.sleep(1 if not self._visibility else min(self._visibility.values()) / 4)
            now = trio.current_time()
            due = [t for t in self._inflight if t.held and now >= t.extend_at]
            async with trio.open_nursery() as nursery:
                for tracker in due:
                    nursery.start_soon(self._heartbeat, tracker, now)

    async def _heartbeat(self, tracker: MessageTracker, now: float) -> None:
        message = tracker.message
        visibility = self._visibility_of(message.queue_url)
        if now - tracker.received_at >= self.max_hold:
            tracker.held = False
            self.telemetry.count("messages_released_max_hold")
            self.telemetry.warning(
                "message held for max_hold; released to the queue",
                queue=message.queue_url,
                message_id=message.message_id,
                receive_count=message.receive_count,
            )
            await self._release(message)
            return
        tracker.extend_at = now + visibility / 2
        try:
            await self.sqs.change_visibility(message, int(visibility))
        except SqsError as exc:
            if exc.invalid_handle:
                tracker.held = False
            self.telemetry.warning(
                "visibility heartbeat failed",
                message_id=message.message_id,
                reason=str(exc),
                stopped=not tracker.held,
            )
            return
        self.telemetry.count("messages_heartbeats")

    async def release_unfinished(self, timeout: float = 10.0) -> None:
        """Make every unfinished message visible again at once (shutdown)."""
        pending = [t for t in self._inflight if t.held]
        self._inflight.clear()
        if not pending:
            return
        with trio.move_on_after(timeout):
            async with trio.open_nursery() as nursery:
                for tracker in pending:
                    nursery.start_soon(self._release, tracker.message)

    async def _release(self, message: Message) -> None:
        try:
            await self.sqs.change_visibility(message, 0)
        except SqsError as exc:
            self.telemetry.warning(
                "could not release message; it reappears after its visibility timeout",
                message_id=message.message_id,
                reason=str(exc),
            )
            return
        self.telemetry.count("messages_released")
