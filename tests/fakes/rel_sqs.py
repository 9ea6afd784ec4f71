""":class:`~tests.fakes.fake_sqs.FakeSqs` with the faults and records the reliability
scenarios need: a redrive policy, throttled receives, a second consumer."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import trio

from s3lb.aws.sqs import Message, SqsError
from tests.fakes.fake_sqs import FakeSqs, _Stored
from tests.fakes.seq import Seq

__all__ = ["RelSqs"]


@dataclass(eq=False)
class RelSqs(FakeSqs):
    """:class:`FakeSqs` plus what the scenarios need.

    - ``max_receive_count``: a redrive policy; a message received that many times is
      moved to :attr:`dlq` instead of being delivered again (as SQS does).
    - ``receive_failures``: the next N receives raise a throttling error.
    - :meth:`steal`: a second consumer receives the message (our handle dies).
    - :attr:`events`: ``(seq, virtual time, action, message id, value)`` for every call.
    - :attr:`max_in_flight`: the most messages ever invisible at once (I8).
    """

    seq: Seq = field(default_factory=Seq)
    max_receive_count: int = 0
    receive_failures: int = 0
    dlq: list[_Stored] = field(default_factory=list)
    events: list[tuple[float, float, str, str, float]] = field(default_factory=list)
    max_in_flight: int = 0
    stolen: set[str] = field(default_factory=set)

    def _note(self, action: str, message_id: str, value: float = 0.0) -> None:
        super()._note(action, message_id, value)
        self.events.append((self.seq(), trio.current_time(), action, message_id, value))

    def in_flight(self) -> int:
        """Messages received and invisible now (stolen ones excluded)."""
        now = trio.current_time()
        return sum(
            1
            for stored in itertools.chain.from_iterable(self._queues.values())
            if stored.receive_count
            and stored.visible_at > now
            and stored.message_id not in self.stolen
        )

    async def receive(self, queue_url: str, max_messages: int, wait_time: float) -> list[Message]:
        if self.receive_failures:
            self.receive_failures -= 1
            await trio.sleep(0)
            raise SqsError(
                "SQS ReceiveMessage failed: HTTP 400 ThrottlingException: Rate exceeded",
                "ThrottlingException",
                400,
            )
        out = await super().receive(queue_url, max_messages, wait_time)
        self.max_in_flight = max(self.max_in_flight, self.in_flight())
        return out

    def _before_receive(self, queue_url: str, now: float) -> None:
        self._redrive(queue_url, now)

    def _redrive(self, queue_url: str, now: float) -> None:
        """SQS's redrive policy: a message due again after ``max_receive_count``
        receives goes to the dead-letter queue instead."""
        if not self.max_receive_count:
            return
        queue = self._queues.get(queue_url, [])
        for stored in list(queue):
            if stored.visible_at <= now and stored.receive_count >= self.max_receive_count:
                queue.remove(stored)
                self.dlq.append(stored)
                self._note("redrive", stored.message_id, stored.receive_count)

    def steal(self, queue_url: str, message_id: str, hold: float) -> None:
        """Another consumer receives ``message_id`` now and holds it ``hold`` seconds
        (and then dies without deleting it)."""
        for stored in self._queues.get(queue_url, []):
            if stored.message_id == message_id:
                stored.receive_count += 1
                stored.visible_at = trio.current_time() + hold
                stored.handle = f"{stored.message_id}/{stored.receive_count}/other"
                self.stolen.add(message_id)
                self._note("stolen", message_id, stored.receive_count)
                return
        raise KeyError(message_id)

    def times(self, action: str, message_id: str | None = None) -> list[float]:
        """Virtual times of every ``action`` (of ``message_id``)."""
        return [t for _, t, a, m, _ in self.events if a == action and message_id in (None, m)]

    def bodies(self) -> dict[str, str]:
        """Every message body ever sent, by id."""
        return dict(self._bodies)

    def send(self, queue_url: str, body: str) -> str:
        message_id = super().send(queue_url, body)
        self._bodies[message_id] = body
        return message_id

    def __post_init__(self) -> None:
        self._bodies: dict[str, str] = {}
