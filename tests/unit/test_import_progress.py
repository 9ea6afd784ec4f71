"""``s3lb import``'s terminal output: the bar's line, a bar that log lines clear first,
and the summary at the end."""

from __future__ import annotations

import io
import logging
from dataclasses import replace

from s3lb.cli.import_ import Progress, _Bar, print_summary
from s3lb.pipeline import ImportStatistics
from s3lb.pipeline.import_runs import JobStatistics
from s3lb.telemetry import Telemetry


def test_the_progress_line_has_objects_bytes_events_rate_and_eta() -> None:
    stats = ImportStatistics(
        listed=40, listed_bytes=4 << 20, finished=10, finished_bytes=1 << 20, events_indexed=12345
    )
    progress = Progress(lambda: stats, Telemetry())
    line = progress.line(stats, elapsed=10)  # ten seconds in
    assert line.startswith("[listing…] 10/40+ objects 1.0 MiB/4.0 MiB 12,345 events")
    assert line.endswith("ETA ?")
    stats = replace(stats, listing_done=True, skipped=10, skipped_bytes=1 << 20, failed=2)
    line = progress.line(stats, elapsed=10)
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


def test_the_summary_names_failures_stopped_jobs_and_how_to_continue() -> None:
    failures = tuple((f"s3://logs/{i}.gz", "corrupt gzip") for i in range(20))
    stats = ImportStatistics(
        listed=30,
        finished=5,
        finished_bytes=2048,
        skipped=3,
        events_indexed=1234,
        jobs=(
            JobStatistics("a s3://logs/ since=- to=-", False, 25, 22, "k", "", 22, failures),
            JobStatistics("b s3://x/ since=- to=-", False, 0, 0, "", "Access Denied"),
        ),
        ended=True,
        interrupted=True,
    )
    err = io.StringIO()
    print_summary(stats, "read", 75, err)
    lines = err.getvalue().splitlines()
    assert lines[:3] == [
        "s3lb import: 30 objects listed in the window: 5 read, 3 already done, 22 failed; "
        "2.0 KiB, 1,234 events indexed in 1m15s",
        "  a s3://logs/ since=- to=-: incomplete, 25 done, 22 failed, last key k",
        "  b s3://x/ since=- to=-: incomplete, 0 done, 0 failed, last key -",
    ]
    assert lines[3] == "failed objects (retried by the next run): 22"
    assert lines[4:24] == [f"  s3://logs/{i}.gz: corrupt gzip" for i in range(20)]
    assert lines[24:] == [
        "  … and 2 more (see the log)",
        "job stopped: b s3://x/ since=- to=-: Access Denied",
        "interrupted: run the same command again to continue",
    ]
