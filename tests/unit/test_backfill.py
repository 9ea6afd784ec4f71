"""``s3lb import``'s pure parts: times, URLs, windows, date-folder planning, the listing
walk (against an in-memory bucket that answers like ListObjectsV2), the cursor, and the
synthetic notifications of ``--enqueue``."""

from __future__ import annotations

import io
import logging
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3lb.aws.notifications import decode_notification
from s3lb.aws.s3 import ListedObject, ListPage, _parse_list
from s3lb.config import loads
from s3lb.errors import ConfigError
from s3lb.model import ObjectRef
from s3lb.pipeline.importer import (
    MAX_FANOUT,
    ImportOptions,
    Lister,
    ListingCursor,
    Progress,
    Window,
    _Bar,
    covered,
    day_range,
    folder_span,
    level_start,
    notification_body,
    overlap,
    parse_bucket_url,
    parse_time,
    plan_jobs,
    prefix_path,
)
from s3lb.telemetry import Telemetry

ELB = "prod/AWSLogs/123456789012/elasticloadbalancing/eu-west-1/"


class FakeBucket:
    """ListObjectsV2 over a dict of key → LastModified: names (keys and rolled-up
    common prefixes) in order, ``start-after``/continuation by name, ``max-keys``."""

    def __init__(self, objects: dict[str, datetime]) -> None:
        self.objects = objects
        self.keys = sorted(objects)
        self.calls: list[tuple[str, str, int]] = []

    async def __call__(
        self,
        prefix: str,
        *,
        delimiter: str = "",
        start_after: str = "",
        continuation_token: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        self.calls.append((prefix, delimiter, max_keys))
        after = continuation_token or start_after
        names: list[str] = []
        for key in self.keys:
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            name = key
            if delimiter and delimiter in rest:
                name = prefix + rest.split(delimiter)[0] + delimiter
            if name > after and (not names or names[-1] != name):
                names.append(name)
        page, more = names[:max_keys], len(names) > max_keys
        objects = [ListedObject(n, 1, "etag", self.objects[n]) for n in page if not n.endswith("/")]
        prefixes = [n for n in page if n.endswith("/") and n not in self.objects]
        return ListPage(objects, prefixes, page[-1] if more else "")


async def keys_of(lister: Lister, after: str = "") -> list[str]:
    return [obj.key async for obj in lister.objects(after)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- times, URLs, windows -----------------------------------------------------------------


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


# -- the listing walk ---------------------------------------------------------------------


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


# -- the cursor ---------------------------------------------------------------------------


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


# -- jobs and notifications ---------------------------------------------------------------


CONFIG = """
s3lb:
  inputs:
    - type: sqs
      queues_url: ["https://sqs.eu-west-1.amazonaws.com/1/q"]
    - type: s3
      name: alb
      buckets: ["s3://logs", "s3://logs/", "s3://logs/prod/"]
      since: 2018-10-15T01:00
      to: "2018-11-20"
    - type: s3
      buckets: ["s3://other"]
output.file.path: "-"
"""


def test_jobs_come_from_s3_inputs_and_flags_override_the_file() -> None:
    config, _ = loads(CONFIG)
    jobs = plan_jobs(config, ImportOptions())
    assert [j.id for j in jobs] == [
        "alb s3://logs/ since=2018-10-15T01:00:00Z to=2018-11-20T00:00:00Z",
        "alb s3://logs/prod/ since=2018-10-15T01:00:00Z to=2018-11-20T00:00:00Z",
        "inputs[2] s3://other/ since=- to=-",
    ]
    (job,) = plan_jobs(config, ImportOptions(input="inputs[2]", since="2024-01-01", to=""))
    assert job.window == Window(utc(2024, 1, 1), None)
    assert (job.bucket, job.prefix, job.input.name) == ("other", "", "inputs[2]")
    enqueue = plan_jobs(config, ImportOptions(input="alb", enqueue="https://q"))
    assert all(j.id.endswith(" enqueue=https://q") for j in enqueue)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ImportOptions(input="nope"), "no type: s3 input named 'nope'"),
        (ImportOptions(input="alb", since="2019-01-01"), "must be before to"),
        (ImportOptions(to="soon"), "--to: not an ISO 8601"),
    ],
)
def test_bad_import_options_are_config_errors(options: ImportOptions, message: str) -> None:
    config, _ = loads(CONFIG)
    with pytest.raises(ConfigError, match=message):
        plan_jobs(config, options)


@pytest.mark.parametrize("key", ["a/b.log", "dir with spaces/a+b=c (1).log.gz", "é/100%.log"])
def test_an_enqueued_notification_decodes_to_the_listed_object(key: str) -> None:
    obj = ListedObject(key, 1234, "0123abcd-2", utc(2024, 1, 1))
    body = notification_body("logs", obj, "eu-west-1", "2025-01-01T00:00:00Z")
    (ref,) = decode_notification(body).objects
    assert ref == ObjectRef("logs", key, "0123abcd-2", size=1234, event_time=ref.event_time)


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


# -- progress -----------------------------------------------------------------------------


def test_the_progress_line_has_objects_bytes_events_rate_and_eta() -> None:
    telemetry = Telemetry()
    telemetry.count("events_indexed", 12345)
    progress = Progress(telemetry, listed=40, listed_bytes=4 << 20, finished=10)
    progress.finished_bytes = 1 << 20
    progress.started -= 10  # ten seconds in
    line = progress.line()
    assert line.startswith("[listing…] 10/40+ objects 1.0 MiB/4.0 MiB 12,345 events")
    assert line.endswith("ETA ?")
    progress.listing_done = True
    progress.skipped, progress.skipped_bytes, progress.failed = 10, 1 << 20, 2
    line = progress.line()
    assert line.startswith("[##########----------]  50% 20/40 objects 1.0 MiB/3.0 MiB")
    assert "102.4 KiB/s" in line and "2 failed" in line and line.endswith("ETA 20s")


def test_the_bar_rewrites_one_line_and_log_lines_clear_it_first() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("s3lb")
    logger.addHandler(handler)
    try:
        bar = _Bar(stream)
        bar.draw("[####] 1/2 objects")
        logger.warning("something happened")
        bar.draw("[########] 2/2 objects")
        bar.close()
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == (
        "\r\x1b[K[####] 1/2 objects"
        "\r\x1b[Ksomething happened\n"
        "\r\x1b[K[########] 2/2 objects"
        "\r\x1b[K"
    )
    assert not handler.filters
