"""Timestamp conversion: UTC, cut (not rounded) to milliseconds; Go layouts."""

from __future__ import annotations

import pytest

from s3lb.formats import ParseError
from s3lb.formats._time import (
    epoch_ms,
    epoch_seconds,
    go_layout,
    iso8601,
    iso_utc,
    iso_utc_naive,
    timestamp_parser,
)


@pytest.mark.parametrize(
    ("layout", "value", "expected"),
    [
        # The seed's CloudFront layout (kind_test.go).
        ("2006-01-02\t15:04:05", "2014-05-23\t01:15:18", "2014-05-23T01:15:18.000Z"),
        ("2006-01-02 15:04:05", "2019-03-23 17:04:53", "2019-03-23T17:04:53.000Z"),
        # Go accepts a fraction after the seconds even when the layout has none.
        ("2006-01-02 15:04:05", "2019-03-23 17:04:53.9876", "2019-03-23T17:04:53.987Z"),
        (
            "2006-01-02T15:04:05.000Z07:00",
            "2019-03-23T17:04:53.208+02:00",
            "2019-03-23T15:04:53.208Z",
        ),
        ("2006-01-02T15:04:05.999999999Z07:00", "2019-03-23T17:04:53Z", "2019-03-23T17:04:53.000Z"),
        ("02/Jan/2006:15:04:05 -0700", "06/Feb/2019:00:00:38 +0000", "2019-02-06T00:00:38.000Z"),
        ("02/Jan/2006:15:04:05 -0700", "06/Feb/2019:00:00:38 -0130", "2019-02-06T01:30:38.000Z"),
        (
            "Mon, 02 Jan 2006 15:04:05 MST",
            "Sat, 23 Mar 2019 17:04:53 UTC",
            "2019-03-23T17:04:53.000Z",
        ),
        ("January 2, 2006 3:04:05 PM", "March 3, 2019 5:04:53 PM", "2019-03-03T17:04:53.000Z"),
        ("Jan _2 15:04:05 2006", "Mar  3 17:04:53 2019", "2019-03-03T17:04:53.000Z"),
        ("06-1-2 3:4:5pm", "19-3-23 5:4:3am", "2019-03-23T05:04:03.000Z"),
        ("2006-01-02T15:04:05Z0700", "2019-03-23T17:04:53Z", "2019-03-23T17:04:53.000Z"),
        ("20060102150405", "20190323170453", "2019-03-23T17:04:53.000Z"),
    ],
)
def test_go_layouts_are_translated(layout: str, value: str, expected: str) -> None:
    """Go reference layouts (time:<layout>) parse like Go's time.Parse."""
    assert go_layout(layout)(value) == expected
    assert timestamp_parser("time:" + layout)(value) == expected


@pytest.mark.parametrize(
    ("layout", "value"),
    [
        # kind_test.go asserts these fail.
        ("2006-01-02 15:04:05", "3 Feb 2014 01:14:18"),
        ("2006-01-02 15:04:05", 123456),
        ("2006-01-02 15:04:05", "2019-02-30 00:00:00"),
        ("2006-01-02 15:04:05", "2019-03-23 17:04:53 trailing"),
    ],
)
def test_go_layout_mismatches_raise_parse_error(layout: str, value: object) -> None:
    with pytest.raises(ParseError):
        go_layout(layout)(value)


def test_seed_time_formats() -> None:
    """timeUnixMilliseconds takes ints and digit strings; timeISO8601 is RFC 3339."""
    assert epoch_ms(1553360693208) == "2019-03-23T17:04:53.208Z"
    assert epoch_ms("1553360693208") == "2019-03-23T17:04:53.208Z"
    assert epoch_ms(-1) == "1969-12-31T23:59:59.999Z"
    iso = timestamp_parser("timeISO8601")
    assert iso("2016-08-10T22:08:42.945958Z") == "2016-08-10T22:08:42.945Z"
    for bad in (True, "true", 1.5e300, None):
        with pytest.raises(ParseError):
            epoch_ms(bad)
    with pytest.raises(ParseError):
        iso(True)
    with pytest.raises(ParseError):
        iso("true")


def test_unknown_timestamp_format_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="timeUnixMilliseconds"):
        timestamp_parser("timeRFC2822")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Cut, never rounded: .9999999 stays .999.
        ("2016-08-10T22:08:42.9999999Z", "2016-08-10T22:08:42.999Z"),
        ("2016-08-10T22:08:42Z", "2016-08-10T22:08:42.000Z"),
        ("2016-08-10T22:08:42.5Z", "2016-08-10T22:08:42.500Z"),
        ("2016-08-10T23:08:42.123456+01:00", "2016-08-10T22:08:42.123Z"),
        ("2020-09-25T23:01:05.598481+0000", "2020-09-25T23:01:05.598Z"),
        ("2016-12-31T23:30:00-01:00", "2017-01-01T00:30:00.000Z"),
    ],
)
def test_iso_timestamps_become_utc_milliseconds(value: str, expected: str) -> None:
    assert iso8601(value) == expected
    assert iso_utc(value) == expected


@pytest.mark.parametrize("bad", ["2016-13-10T22:08:42.945958Z", "2016-08-10 22:08", "", "Z"])
def test_invalid_iso_timestamps_raise(bad: str) -> None:
    with pytest.raises(ParseError):
        iso_utc(bad)


def test_zone_less_and_epoch_second_times() -> None:
    """NLB writes UTC without a zone; VPC Flow Logs write epoch seconds."""
    assert iso_utc_naive("2018-12-20T02:59:40") == "2018-12-20T02:59:40.000Z"
    assert epoch_seconds(1418530010) == "2014-12-14T04:06:50.000Z"
    assert epoch_seconds("1418530010") == "2014-12-14T04:06:50.000Z"
