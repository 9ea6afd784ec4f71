"""The one backoff formula: exponential to its cap, jittered, and safe for any attempt count."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from s3lb.retry import Backoff, backoff_delay


@pytest.mark.parametrize("attempt", [0, 1, 5, 1023, 1024, 10**6, 10**18])
def test_a_delay_stays_within_the_upper_half_of_its_cap_for_any_attempt(attempt: int) -> None:
    """Issue 16.2: attempt 1024 used to raise OverflowError after ~12.7 h of outage."""
    cap = min(30.0, 0.001 * 2.0 ** min(attempt, 100))
    for _ in range(20):
        assert cap / 2 <= backoff_delay(attempt, 0.001, 30.0) <= cap


async def test_a_loop_backs_off_through_thousands_of_failures_and_starts_over_after_a_success(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A week of failures in virtual time: delays grow to the cap and stay there."""
    backoff = Backoff(initial=0.001, maximum=60.0)
    start = trio.current_time()
    for _ in range(12_000):
        await backoff.sleep()
    elapsed = trio.current_time() - start
    assert 12_000 * 30 * 0.9 < elapsed < 12_000 * 60  # nearly all at the cap: 30–60 s each
    backoff.reset()
    assert backoff.next_delay() <= 0.001
