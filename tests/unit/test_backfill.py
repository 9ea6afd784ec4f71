"""``s3lb import``'s progress bar (windows, listing and cursor: test_window, test_listing,
test_cursor; jobs and notifications: test_importer)."""

from __future__ import annotations

import io
import logging

from s3lb.pipeline.importer import Progress, _Bar
from s3lb.telemetry import Telemetry

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
