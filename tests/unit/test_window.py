"""Time windows, bucket URLs and the date folders worth listing for a window."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from s3lb.errors import ConfigError
from s3lb.sources.window import (
    Window,
    covered,
    day_range,
    folder_span,
    level_start,
    overlap,
    parse_bucket_url,
    parse_time,
    prefix_path,
)
from tests.fakes.fake_bucket import ELB, utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-31", utc(2024, 1, 31)),
        ("2018-10-15T01:00", utc(2018, 10, 15, 1)),
        ("2018-10-15 01:00:30", utc(2018, 10, 15, 1, 0, 30)),
        ("2024-01-31T12:00:00Z", utc(2024, 1, 31, 12)),
        ("2024-01-31T12:00:00+02:00", utc(2024, 1, 31, 10)),
        (" 2024-01-31T12:00:00.250-01:00 ", utc(2024, 1, 31, 13, 0, 0, 250000)),
    ],
)
def test_times_are_iso_8601_with_or_without_zone_seconds_or_time(
    text: str, expected: datetime
) -> None:
    """No zone means UTC; a date means its UTC midnight; the result is aware UTC."""
    assert parse_time(text, "--since") == expected


def test_a_bad_time_names_where_it_came_from() -> None:
    with pytest.raises(ConfigError, match=r"s3lb.inputs\[0\].since: not an ISO 8601"):
        parse_time("last tuesday", "s3lb.inputs[0].since")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket/logs", ("bucket", "logs")),
        ("s3://bucket/logs/a b/", ("bucket", "logs/a b/")),
        ("bucket/logs/", ("bucket", "logs/")),
    ],
)
def test_bucket_urls_with_or_without_a_slash(url: str, expected: tuple[str, str]) -> None:
    """``s3://bucket`` and ``s3://bucket/`` both mean the whole bucket (the seed crashed)."""
    assert parse_bucket_url(url, "x") == expected


@pytest.mark.parametrize("url", ["s3://", "s3:///logs", "https://bucket/logs"])
def test_a_bucket_url_without_a_bucket_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_bucket_url(url, "x")


def test_the_window_includes_since_and_excludes_to() -> None:
    window = Window(utc(2024, 1, 1), utc(2024, 2, 1))
    assert utc(2024, 1, 1) in window
    assert utc(2024, 1, 31, 23, 59, 59) in window
    assert utc(2024, 2, 1) not in window
    assert utc(2023, 12, 31, 23, 59, 59) not in window
    assert utc(1990, 1, 1) in Window(None, utc(2024, 1, 1))
    assert utc(2090, 1, 1) in Window(utc(2024, 1, 1), None)
    assert str(Window(utc(2024, 1, 1), None)) == "since=2024-01-01T00:00:00Z to=-"


def test_the_days_worth_listing_have_a_day_of_margin_on_each_side() -> None:
    today = date(2025, 6, 1)
    assert day_range(Window(), today) is None
    window = Window(utc(2024, 1, 10, 5), utc(2024, 1, 20))
    assert day_range(window, today) == (date(2024, 1, 9), date(2024, 1, 20))
    window = Window(utc(2024, 1, 10), utc(2024, 1, 20, 0, 0, 1))
    assert day_range(window, today) == (date(2024, 1, 9), date(2024, 1, 21))
    assert day_range(Window(utc(2024, 1, 10), None), today) == (date(2024, 1, 9), date(2025, 6, 2))
    assert day_range(Window(None, utc(2024, 1, 10)), today) == (date.min, date(2024, 1, 10))


def test_date_folders_are_a_year_then_months_then_days() -> None:
    assert folder_span((), "2024") == ((2024,), date(2024, 1, 1), date(2024, 12, 31))
    assert folder_span((2024,), "02") == ((2024, 2), date(2024, 2, 1), date(2024, 2, 29))
    assert folder_span((2024, 2), "29") == ((2024, 2, 29), date(2024, 2, 29), date(2024, 2, 29))
    for path, name in [
        ((), "1850"),
        ((), "24"),
        ((), "２０２４"),
        ((2024,), "13"),
        ((2024,), "2"),
        ((2023, 2), "29"),
        ((2024, 2, 29), "01"),
        ((), "logs"),
    ]:
        assert folder_span(path, name) is None, (path, name)


def test_a_prefix_may_end_inside_a_date_layout() -> None:
    assert prefix_path(f"{ELB}2024/") == (2024,)
    assert prefix_path(f"{ELB}2024/03/") == (2024, 3)
    assert prefix_path("2024/03/09/") == (2024, 3, 9)
    assert prefix_path(f"{ELB}2024") == ()
    assert prefix_path("logs/13/") == ()
    assert prefix_path("") == ()


def test_a_folder_lies_inside_outside_or_across_the_days_worth_listing() -> None:
    first, last = date(2024, 2, 28), date(2024, 3, 31)
    assert overlap(date(2024, 3, 1), date(2024, 3, 31), first, last) == "inside"
    assert overlap(date(2024, 2, 1), date(2024, 2, 29), first, last) == "partial"
    assert overlap(date(2024, 1, 1), date(2024, 1, 31), first, last) == "outside"
    assert overlap(date(2024, 4, 1), date(2024, 4, 1), first, last) == "outside"


def test_resuming_a_delimited_listing_keeps_the_folder_the_cursor_is_in() -> None:
    assert level_start("a/", "a/b/c") == "a/b"  # S3 would drop "a/b/" after "a/b/c"
    assert level_start("a/", "a/x") == "a/x"
    assert level_start("a/", "b/x") == ""
    assert covered("a/", "b") and not covered("a/", "a/b") and not covered("b/", "a/z")
