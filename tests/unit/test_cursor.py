"""The listing cursor: the contiguous finished prefix of a job's listing."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from s3lb.sources.cursor import ListingCursor


def test_the_cursor_moves_only_past_keys_that_are_all_finished() -> None:
    cursor = ListingCursor()
    a, b, c = cursor.add("a"), cursor.add("b"), cursor.add("c")
    cursor.pass_over("d")  # outside the window
    cursor.finish(b)
    cursor.finish(c, failed=True)
    assert not cursor.advance() and cursor.last_key == ""
    cursor.finish(a)
    assert cursor.advance()
    assert (cursor.last_key, cursor.done, cursor.failed, cursor.pending) == ("d", 2, 1, 0)
    cursor.pass_over("e")
    assert cursor.last_key == "e"


def test_keys_passed_over_between_pending_ones_are_passed_by_the_cursor() -> None:
    cursor = ListingCursor("0", done=5)
    a = cursor.add("a")
    cursor.pass_over("b")
    c = cursor.add("c")
    cursor.finish(a)
    cursor.advance()
    assert cursor.last_key == "b"  # c is pending, but b needed nothing
    cursor.finish(c)
    cursor.advance()
    assert (cursor.last_key, cursor.done) == ("c", 7)


def test_runs_of_keys_already_done_take_one_entry() -> None:
    cursor = ListingCursor()
    head = cursor.add("a")
    for key in ("b", "c", "d"):
        cursor.add_done(key)
    assert cursor.pending == 2
    cursor.finish(head)
    cursor.advance()
    assert (cursor.last_key, cursor.done, cursor.pending) == ("d", 4, 0)
    cursor.add_done("e")
    assert (cursor.last_key, cursor.done) == ("e", 5)


@given(st.lists(st.sampled_from(["add", "pass", "done"]), max_size=60), st.randoms())
def test_the_cursor_never_passes_an_unfinished_key(kinds: list[str], rnd: random.Random) -> None:
    """Whatever the finishing order: every key ≤ last_key is finished or passed over,
    and once everything finished the cursor is on the last key with exact counts."""
    cursor = ListingCursor()
    entries, finished, keys = [], set(), []
    for i, kind in enumerate(kinds):
        key = f"k{i:03d}"
        keys.append(key)
        if kind == "add":
            entries.append((key, cursor.add(key)))
        elif kind == "pass":
            cursor.pass_over(key)
            finished.add(key)
        else:
            cursor.add_done(key)
            finished.add(key)
    rnd.shuffle(entries)
    for n, (key, entry) in enumerate(entries):
        cursor.finish(entry, failed=n % 3 == 0)
        finished.add(key)
        cursor.advance()
        assert all(k in finished for k in keys if k <= cursor.last_key)
    cursor.advance()
    assert cursor.last_key == (keys[-1] if keys else "")
    assert cursor.pending == 0
    assert cursor.failed == len(range(0, len(entries), 3))
    assert cursor.done + cursor.failed == kinds.count("add") + kinds.count("done")
