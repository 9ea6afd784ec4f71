"""The contiguous ack watermark: out-of-order acks, resume, and its invariants."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from s3lb.acks import Watermark


@st.composite
def records(draw: st.DrawFn, min_records: int = 0, max_records: int = 60) -> list[int]:
    """Offsets just past each record: ``ends[p - 1]`` for position ``p``."""
    sizes = draw(st.lists(st.integers(0, 500), min_size=min_records, max_size=max_records))
    return list(itertools.accumulate(sizes))


def test_a_fresh_watermark_starts_at_zero() -> None:
    """Nothing acked: acked 0, offset 0, nothing pending."""
    mark = Watermark()
    assert (mark.acked, mark.offset, mark.pending) == (0, 0, 0)


def test_in_order_acks_advance_one_by_one() -> None:
    """Each in-order ack advances the prefix to it and reports the advance."""
    mark = Watermark()
    assert mark.ack(1, 10)
    assert mark.ack(2, 25)
    assert (mark.acked, mark.offset, mark.pending) == (2, 25, 0)


def test_an_ack_past_a_gap_waits_until_the_gap_fills() -> None:
    """Position 3 before 2: nothing moves until 2 arrives, then both count."""
    mark = Watermark()
    assert mark.ack(1, 10)
    assert not mark.ack(3, 30)
    assert (mark.acked, mark.offset, mark.pending) == (1, 10, 1)
    assert mark.is_acked(3) and not mark.is_acked(2)
    assert mark.ack(2, 20)
    assert (mark.acked, mark.offset, mark.pending) == (3, 30, 0)


def test_duplicate_acks_change_nothing() -> None:
    """A resent item acks again; neither prefix nor pending nor offsets move."""
    mark = Watermark()
    mark.ack(1, 10)
    mark.ack(3, 30)
    assert not mark.ack(1, 999)
    assert not mark.ack(3, 999)
    assert mark.pending == 1
    mark.ack(2, 20)
    assert (mark.acked, mark.offset) == (3, 30)


def test_a_resumed_watermark_ignores_positions_it_already_covers() -> None:
    """Resuming at acked=5: acks of 1..5 are no-ops, 6 advances."""
    mark = Watermark(acked=5, offset=500)
    assert not mark.ack(3, 300)
    assert (mark.acked, mark.offset, mark.pending) == (5, 500, 0)
    assert mark.ack(6, 600)
    assert (mark.acked, mark.offset) == (6, 600)


def test_an_unknown_offset_becomes_known_at_the_next_advance() -> None:
    """A compressed object resumes with offset -1; the next ack supplies it."""
    mark = Watermark(acked=4, offset=-1)
    assert mark.offset == -1
    mark.ack(5, 77)
    assert mark.offset == 77


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 0), "positions start at 1"), ((1, -1), "next_offset")],
)
def test_bad_acks_are_refused(args: tuple[int, int], message: str) -> None:
    """Position 0 and negative offsets are programming errors."""
    with pytest.raises(ValueError, match=message):
        Watermark().ack(*args)


def test_bad_starting_points_are_refused() -> None:
    """A negative prefix or an offset below -1 cannot be a checkpoint."""
    with pytest.raises(ValueError):
        Watermark(acked=-1)
    with pytest.raises(ValueError):
        Watermark(offset=-2)


@given(data=st.data(), ends=records())
def test_any_permutation_of_all_acks_ends_at_the_last_record(
    data: st.DataObject, ends: list[int]
) -> None:
    """Acking 1..n in any order ends with acked == n, the last offset, nothing pending."""
    order = data.draw(st.permutations(range(1, len(ends) + 1)))
    mark = Watermark()
    for position in order:
        mark.ack(position, ends[position - 1])
    assert mark.acked == len(ends)
    assert mark.offset == (ends[-1] if ends else 0)
    assert mark.pending == 0


@given(data=st.data(), ends=records(), start=st.integers(0, 60))
def test_a_resume_from_any_prefix_finishes_like_a_fresh_run(
    data: st.DataObject, ends: list[int], start: int
) -> None:
    """Resume at k with k's offset, ack k+1..n in any order (plus stale 1..k): same end."""
    start = min(start, len(ends))
    mark = Watermark(acked=start, offset=ends[start - 1] if start else 0)
    order = data.draw(st.permutations(range(1, len(ends) + 1)))
    for position in order:
        mark.ack(position, ends[position - 1])
    assert (mark.acked, mark.pending) == (len(ends), 0)
    assert mark.offset == (ends[-1] if ends else 0)


class WatermarkModel(RuleBasedStateMachine):
    """Random acks (duplicates included) checked against a plain set of acked positions."""

    @initialize(ends=records(min_records=1, max_records=40))
    def start(self, ends: list[int]) -> None:
        self.ends = ends
        self.acked: set[int] = set()
        self.mark = Watermark()
        self.last_acked = 0

    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        position = data.draw(st.integers(1, len(self.ends)))
        advanced = self.mark.ack(position, self.ends[position - 1])
        self.acked.add(position)
        assert advanced == (self.mark.acked > self.last_acked)

    @invariant()
    def acked_is_the_longest_fully_acked_prefix(self) -> None:
        prefix = 0
        while prefix + 1 in self.acked:
            prefix += 1
        assert self.mark.acked == prefix
        assert self.mark.offset == (self.ends[prefix - 1] if prefix else 0)
        assert self.mark.pending == len(self.acked) - prefix

    @invariant()
    def acked_never_decreases(self) -> None:
        assert self.mark.acked >= self.last_acked
        self.last_acked = self.mark.acked


TestWatermarkModel = WatermarkModel.TestCase
