"""The listing walk, against an in-memory bucket that answers like ListObjectsV2: date
folders far from the window are not listed, everything in it is, in key order; the
retried page fetch; and the parsing of a ListObjectsV2 page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from s3lb.aws.s3 import ListedObject, ListPage, _parse_list
from s3lb.errors import SourceUnavailable
from s3lb.sources.listing import LIST_ATTEMPTS, MAX_FANOUT, Lister, retrying
from s3lb.sources.window import Window
from s3lb.telemetry import Telemetry
from tests.fakes.fake_bucket import ELB, FakeBucket, utc


async def keys_of(lister: Lister, after: str = "") -> list[str]:
    return [obj.key async for obj in lister.objects(after)]


def elb_bucket() -> dict[str, datetime]:
    """Ten years of daily ELB logs (two a day), LastModified just after the key's day."""
    objects = {}
    day = date(2015, 1, 1)
    while day <= date(2024, 12, 31):
        for n in range(2):
            key = f"{ELB}{day:%Y/%m/%d}/log-{n}.gz"
            objects[key] = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                hours=23, minutes=55 + n * 10
            )
        day += timedelta(days=30)  # sparse: fast enough for a unit test
    objects["prod/README"] = utc(2015, 1, 1)
    return objects


async def test_a_window_in_a_ten_year_bucket_lists_only_the_days_near_it() -> None:
    """An old year costs one call (its month folders), never a listing of its days."""
    bucket = FakeBucket(elb_bucket())
    window = Window(utc(2024, 3, 1), utc(2024, 4, 1))
    planned = Lister(bucket, "prod/", window, page_size=50, today=date(2025, 1, 1))
    listed = await keys_of(planned)
    flat = Lister(FakeBucket(elb_bucket()), "prod/", Window(), page_size=50)
    every = await keys_of(flat)
    in_window = [k for k in every if bucket.objects[k] in window]
    assert in_window and [k for k in listed if bucket.objects[k] in window] == in_window
    assert listed == sorted(listed) and len(listed) < len(every) / 10
    folders = {key.rsplit("/", 2)[0] + "/" for key in bucket.objects} | {
        key.rsplit("/", 3)[0] + "/" for key in bucket.objects
    }
    near = [  # Feb 29 and Apr 1 are the margin days
        f"{ELB}2024/02/",
        f"{ELB}2024/02/29/",
        f"{ELB}2024/03/",
        f"{ELB}2024/04/",
        f"{ELB}2024/04/01/",
    ]
    assert [prefix for prefix, _, _ in bucket.calls] == [
        "prod/",
        "prod/AWSLogs/",
        "prod/AWSLogs/123456789012/",
        "prod/AWSLogs/123456789012/elasticloadbalancing/",
        ELB,
        *(f"{ELB}{year}/" for year in range(2015, 2024)),  # their months: one call each
        f"{ELB}2024/",
        *(folder for folder in near if folder in folders),
    ]


async def test_a_prefix_inside_the_layout_is_planned_too() -> None:
    bucket = FakeBucket(elb_bucket())
    window = Window(utc(2024, 3, 1), utc(2024, 4, 1))
    planned = Lister(bucket, f"{ELB}2024/", window, today=date(2025, 1, 1))
    listed = await keys_of(planned)
    assert listed and all(k.startswith((f"{ELB}2024/02/", f"{ELB}2024/03/")) for k in listed)
    assert all(not prefix.startswith(f"{ELB}2024/1") for prefix, _, _ in bucket.calls)


async def test_without_a_window_everything_is_listed_flat() -> None:
    bucket = FakeBucket(elb_bucket())
    keys = await keys_of(Lister(bucket, "", Window(), page_size=100))
    assert keys == sorted(bucket.objects)
    assert all(delimiter == "" for _, delimiter, _ in bucket.calls)


async def test_what_lies_beside_the_date_folders_is_listed() -> None:
    """Only month and day folders are ever skipped; a folder named like a year that holds
    no months, or objects next to the months, are listed like anything else."""
    objects = {
        "2015/readme.txt": utc(2024, 5, 1),
        "2015/x/y.log": utc(2024, 5, 1),
        "2024/05/01/a.log": utc(2024, 5, 1),
        "2024/05/index.html": utc(2024, 5, 1),
        "2024/index.html": utc(2024, 5, 1),
        "2024/01/01/old.log": utc(2024, 5, 1),  # copied late: the documented blind spot
    }
    lister = Lister(FakeBucket(objects), "", Window(utc(2024, 4, 1), utc(2024, 6, 1)))
    assert await keys_of(lister) == [
        "2015/readme.txt",
        "2015/x/y.log",
        "2024/05/01/a.log",
        "2024/05/index.html",
        "2024/index.html",
    ]
    everything = Lister(FakeBucket(objects), "", Window(utc(2024, 4, 1)), plan=False)
    assert await keys_of(everything) == sorted(objects)


async def test_a_wide_level_is_listed_flat_instead_of_one_call_per_folder() -> None:
    objects = {f"p/{i:05d}/x.log": utc(2024, 1, 1) for i in range(MAX_FANOUT * 3)}
    bucket = FakeBucket(objects)
    keys = await keys_of(Lister(bucket, "p/", Window(utc(2023, 1, 1)), page_size=1000))
    assert keys == sorted(objects)
    assert len(bucket.calls) == 2  # the first page, then the flat listing


names = st.sampled_from(["a", "b", "a b", "x+y", "é", "01", "12", "31", "2019"])
folders = st.sampled_from(["a", "b", "a b", "x+y", "é", "01", "12", "31"])


@st.composite
def buckets(draw: st.DrawFn) -> dict[str, datetime]:
    """Keys in and out of YYYY/MM/DD/ layouts; a dated key's LastModified is up to a day
    after its day (what the margin is for); anything else has any LastModified."""
    objects: dict[str, datetime] = {}
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(["dated", "dated", "beside", "other"]))
        head = draw(st.sampled_from(["", "logs/", "logs/eu/", "other-"]))
        moment = datetime(2019, 1, 1, tzinfo=UTC) + timedelta(
            hours=draw(st.integers(0, 6 * 365 * 24))
        )
        if kind == "dated":
            day = date(2019, 1, 1) + timedelta(days=draw(st.integers(0, 6 * 365)))
            key = f"{head}{day:%Y/%m/%d}/{draw(names)}"
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                minutes=draw(st.integers(0, 2 * 24 * 60 - 1))
            )
        elif kind == "beside":  # next to the month folders of a year
            key = f"{head}{draw(st.sampled_from(['2019', '2022', '2024']))}/{draw(names)}"
        else:
            parts = draw(st.lists(folders, max_size=3))
            key = "/".join([*parts, draw(names)])
        objects[key] = moment
    return objects


moments = st.integers(0, 6 * 365 * 24).map(
    lambda h: datetime(2019, 1, 1, tzinfo=UTC) + timedelta(hours=h)
)


@settings(max_examples=150, deadline=None)
@given(
    objects=buckets(),
    since=st.none() | moments,
    span=st.none() | st.integers(1, 3 * 365 * 24),
    prefix=st.sampled_from(["", "logs/", "logs", "a", "logs/2021/", "2022/05/"]),
    page_size=st.integers(1, 7),
    cut=st.integers(0, 10**6),
)
async def test_the_planned_listing_finds_every_object_of_the_window_in_key_order(
    objects: dict[str, datetime],
    since: datetime | None,
    span: int | None,
    prefix: str,
    page_size: int,
    cut: int,
) -> None:
    """Planned or flat, from the start or resumed after any key: the same objects in the
    window (when keys are dated at most a day before LastModified), strictly in order."""
    to = None if span is None else (since or utc(2022, 1, 1)) + timedelta(hours=span)
    window = Window(since, to)
    flat = Lister(FakeBucket(objects), prefix, Window(), page_size=page_size)
    every = await keys_of(flat)
    assert every == sorted(k for k in objects if k.startswith(prefix))
    lister = Lister(
        FakeBucket(objects), prefix, window, page_size=page_size, today=date(2025, 12, 31)
    )
    listed = await keys_of(lister)
    assert listed == sorted(set(listed))
    assert [k for k in listed if objects[k] in window] == [k for k in every if objects[k] in window]
    after = every[cut % len(every)] if every else ""
    resumed = await keys_of(lister, after)
    assert resumed == [k for k in listed if k > after]


class Flaky:
    """A page lister that fails ``failures`` times with SourceUnavailable before it
    answers from ``bucket``."""

    def __init__(self, bucket: FakeBucket, failures: int) -> None:
        self.bucket = bucket
        self.failures = failures
        self.calls = 0

    async def __call__(self, prefix: str, **kwargs: Any) -> ListPage:
        self.calls += 1
        if self.calls <= self.failures:
            raise SourceUnavailable("S3 ListObjectsV2 failed: ConnectError")
        return await self.bucket(prefix, **kwargs)


async def test_a_failed_page_is_retried_after_a_growing_pause(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    objects = {f"logs/{i}.log": utc(2024, 1, 1) for i in range(3)}
    flaky = Flaky(FakeBucket(objects), failures=LIST_ATTEMPTS - 2)
    pages = retrying(flaky, "logs", Telemetry(), trio.Event())
    start = trio.current_time()
    assert await keys_of(Lister(pages, "logs/", Window())) == sorted(objects)
    assert flaky.calls == LIST_ATTEMPTS - 1
    warned = [r for r in caplog.records if r.getMessage() == "S3 listing failed; retrying"]
    assert len(warned) == LIST_ATTEMPTS - 2
    # pauses of at least half of 1, 2, 4, 8 seconds (jittered up to the whole)
    assert trio.current_time() - start >= (1 + 2 + 4 + 8) / 2


async def test_the_listing_gives_up_after_its_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky(FakeBucket({}), failures=LIST_ATTEMPTS)
    pages = retrying(flaky, "logs", Telemetry(), trio.Event())
    with pytest.raises(SourceUnavailable):
        await keys_of(Lister(pages, "", Window()))
    assert flaky.calls == LIST_ATTEMPTS


async def test_a_stopping_import_does_not_retry_its_listing() -> None:
    stop = trio.Event()
    stop.set()
    flaky = Flaky(FakeBucket({"a": utc(2024, 1, 1)}), failures=1)
    with pytest.raises(SourceUnavailable):
        await keys_of(Lister(retrying(flaky, "logs", Telemetry(), stop), "", Window()))
    assert flaky.calls == 1


def test_a_listing_page_is_parsed_with_url_encoded_names() -> None:
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>logs</Name><Prefix>a%20b/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>a+b/x%2By%C3%A9.log</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>
    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>42</Size></Contents>
  <CommonPrefixes><Prefix>a+b/sub/</Prefix></CommonPrefixes>
</ListBucketResult>"""
    page = _parse_list(xml, "logs")
    assert page.objects == [
        ListedObject(
            "a b/x+yé.log", 42, "9b2cf535f27731c974343645a3985328", utc(2024, 1, 2, 3, 4, 5)
        )
    ]
    assert page.prefixes == ["a b/sub/"]
    assert page.next_token == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
