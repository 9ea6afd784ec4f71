"""The shares of a multi-process import: every key in exactly one share, the same one
in every process, spread evenly even over keys that differ by a digit."""

from __future__ import annotations

import pytest

from s3lb.sources import Share, split_job_id


@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_every_key_is_in_exactly_one_share_and_the_shares_are_even(count: int) -> None:
    keys = [f"prod-web/2024/05/01/{i:05d}.log.gz" for i in range(4000)]
    sizes = [sum(Share(i, count).holds(key) for key in keys) for i in range(1, count + 1)]
    assert sum(sizes) == len(keys)
    assert all(sum(Share(i, count).holds(key) for i in range(1, count + 1)) == 1 for key in keys)
    assert max(sizes) - min(sizes) < len(keys) / count * 0.2


def test_a_key_is_always_in_the_same_share() -> None:
    # Fixed by the hash, not by the process: a rerun (or another worker) agrees. A
    # change of hash would move keys between the stored cursors of an interrupted import.
    assert [Share(i, 4).holds("AWSLogs/é/x.log") for i in range(1, 5)] == [
        True,
        False,
        False,
        False,
    ]


def test_a_share_names_its_cursor_and_the_name_gives_it_back() -> None:
    share = Share.parse("2/4")
    assert share == Share(2, 4) and str(share) == "2/4"
    job = share.job_id("alb s3://b/p/ since=- to=-")
    assert job == "alb s3://b/p/ since=- to=- share=2/4"
    assert split_job_id(job) == ("alb s3://b/p/ since=- to=-", share)
    assert split_job_id("alb s3://b/p/ since=- to=-") == ("alb s3://b/p/ since=- to=-", None)
    assert split_job_id("odd share=x/y") == ("odd share=x/y", None)


@pytest.mark.parametrize("text", ["", "2", "0/2", "3/2", "a/b", "-1/2"])
def test_a_bad_share_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="share"):
        Share.parse(text)
