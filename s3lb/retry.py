"""Backoff for every retry loop: exponential, capped, jittered, and safe however long it runs.

:class:`Backoff` counts the attempts of one loop; :func:`backoff_delay` is its pure formula.
The exponent saturates once the cap is reached, so a retry loop may run for a week of
outage (millions of attempts) without the delay computation overflowing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import trio

__all__ = ["Backoff", "backoff_delay"]

#: 2**62 already exceeds any cap in seconds; larger exponents change nothing.
_MAX_EXPONENT = 62


def backoff_delay(attempt: int, initial: float, maximum: float) -> float:
    """Delay before retry number ``attempt`` (0-based): ``initial * 2**attempt`` capped at
    ``maximum``, with jitter over the upper half so that workers do not retry in lockstep."""
    exponent = min(max(attempt, 0), _MAX_EXPONENT)
    cap = min(maximum, initial * (1 << exponent))
    return cap / 2 + random.uniform(0, cap / 2)


@dataclass(slots=True)
class Backoff:
    """The attempts of one retry loop: ``await backoff.sleep()`` after each failure,
    ``backoff.reset()`` after a success."""

    initial: float
    maximum: float
    attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next retry; counts one attempt."""
        delay = backoff_delay(self.attempt, self.initial, self.maximum)
        self.attempt += 1
        return delay

    async def sleep(self) -> None:
        """Wait out the next delay."""
        await trio.sleep(self.next_delay())

    def reset(self) -> None:
        """The operation succeeded: the next failure starts again from ``initial``."""
        self.attempt = 0
