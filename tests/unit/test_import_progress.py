"""``s3lb import``'s progress: the bar's line, and a bar that log lines clear first."""

from __future__ import annotations

import io
import logging
from dataclasses import replace

from s3lb.cli.import_ import Progress, _Bar
from s3lb.pipeline import ImportStatistics
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
