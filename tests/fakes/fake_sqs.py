"""An in-memory SQS queue on trio's clock, with real visibility semantics.

Duck-types :class:`s3lb.aws.sqs.SqsClient` for component tests on the autojump clock:
a received message is invisible for the visibility timeout, comes back when it
expires (``receive_count`` grows), and a receipt handle stops working once the
message was received again. Every call is recorded on :attr:`FakeSqs.timeline`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from s3lb.aws.sqs import Message, SqsError

__all__ = ["FakeSqs"]


@dataclass
class _Stored:
    message_id: str
    body: str
    visible_at: float = 0.0
    receive_count: int = 0
    handle: str = ""


@dataclass
class FakeSqs:
    """One or more queues, by URL; ``visibility`` is every queue's timeout."""

    visibility: float = 30.0
    timeline: list[tuple[float, str, str, float]] = field(default_factory=list)
    _queues: dict[str, list[_Stored]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def send(self, queue_url: str, body: str) -> str:
        """Enqueue ``body``; returns the message id."""
        message_id = f"m{next(self._ids)}"
        self._queues.setdefault(queue_url, []).append(_Stored(message_id, body))
        return message_id

    def stored(self, queue_url: str) -> list[_Stored]:
        """The messages still in the queue (visible or not)."""
        return list(self._queues.get(queue_url, []))

    def _note(self, action: str, message_id: str, value: float = 0.0) -> None:
        self.timeline.append((trio.current_time(), action, message_id, value))

    async def receive(self, queue_url: str, max_messages: int, wait_time: float) -> list[Message]:
        deadline = trio.current_time() + wait_time
        while True:
            now = trio.current_time()
            self._before_receive(queue_url, now)
            ready = [m for m in self._queues.get(queue_url, []) if m.visible_at <= now]
            if ready or now >= deadline:
                break
            await trio.sleep(min(1.0, deadline - now))
        out = []
        for stored in ready[:max_messages]:
            stored.receive_count += 1
            stored.visible_at = now + self.visibility
            stored.handle = f"{stored.message_id}/{stored.receive_count}"
            self._note("receive", stored.message_id, stored.receive_count)
            out.append(
                Message(
                    queue_url, stored.message_id, stored.handle, stored.body, stored.receive_count
                )
            )
        return out

    def _before_receive(self, queue_url: str, now: float) -> None:
        """Called before each look at the queue (a subclass adds a redrive policy)."""

    def _find(self, message: Message) -> _Stored:
        for stored in self._queues.get(message.queue_url, []):
            if stored.handle == message.receipt_handle:
                return stored
        raise SqsError("receipt handle is invalid", "ReceiptHandleIsInvalid", 400)

    async def change_visibility(self, message: Message, timeout: int) -> None:
        stored = self._find(message)
        stored.visible_at = trio.current_time() + timeout
        self._note("visibility", message.message_id, timeout)

    async def delete_batch(self, messages: Sequence[Message]) -> list[tuple[Message, str]]:
        failed = []
        for message in messages:
            try:
                stored = self._find(message)
            except SqsError as exc:
                failed.append((message, str(exc)))
                continue
            self._queues[message.queue_url].remove(stored)
            self._note("delete", message.message_id)
        return failed

    async def attributes(self, queue_url: str, names: Sequence[str] = ("All",)) -> dict[str, str]:
        return {"VisibilityTimeout": str(int(self.visibility))}
