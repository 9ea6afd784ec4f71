"""``processes`` and what worker processes share with their supervisor: the setting's
bounds, the snapshot sum behind the one ``/metrics``, and the ``worker=N`` log tag."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from s3lb.cli.workers import Report, worker_index
from s3lb.config import loads
from s3lb.config.cores import usable_cores
from s3lb.errors import ConfigError
from s3lb.metrics import make_registry
from s3lb.telemetry import Telemetry, TelemetrySnapshot, merge_snapshots, tag_logs

OUT = "\noutput.file.path: '-'"


@pytest.mark.parametrize(("value", "count"), [("1", 1), ("2", 2), ("64", 64)])
def test_processes_takes_a_count(value: str, count: int) -> None:
    config, _ = loads(f"s3lb: {{processes: {value}}}" + OUT)
    assert config.settings.process_count() == count


@pytest.mark.parametrize("text", ["s3lb: {processes: auto}", "s3lb: {}"])
def test_processes_auto_and_by_default_is_the_cores_this_process_may_use(text: str) -> None:
    config, _ = loads(text + OUT)
    assert config.settings.process_count() == min(usable_cores()[0], 64)
    assert 1 <= config.settings.process_count() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["0", "65", "-1", "many", "1.5"])
def test_other_processes_values_are_refused_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads(f"s3lb: {{processes: {value}}}" + OUT)
    assert info.value.path == "s3lb.processes"


def test_run_refuses_a_bad_processes_with_exit_2_and_one_line(tmp_path: Path) -> None:
    (tmp_path / "s3lb.yml").write_text("s3lb: {processes: 0}" + OUT)
    proc = subprocess.run(
        [sys.executable, "-m", "s3lb", "run", "-c", str(tmp_path / "s3lb.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "s3lb.processes" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize(
    ("command", "config"),
    [
        (["run"], "s3lb: {processes: 2}"),
        (
            ["import", "--since", "1d"],
            "s3lb: {inputs: [{type: s3, buckets: [b], log_format: alb}]}",
        ),
    ],
)
def test_run_and_import_refuse_several_processes_writing_one_output_file(
    tmp_path: Path, command: list[str], config: str
) -> None:
    (tmp_path / "s3lb.yml").write_text(config + OUT)
    extra = ["--processes", "2"] if command[0] == "import" else []
    proc = subprocess.run(
        [sys.executable, "-m", "s3lb", *command, *extra, "-c", str(tmp_path / "s3lb.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"s3lb {command[0]}: configuration error: s3lb.processes: output.file is written by one"
        " process: set it to 1 or auto"
    )


def test_snapshots_sum_counters_gauges_and_histograms() -> None:
    a, b = Telemetry(), Telemetry()
    a.count("events_indexed", 5)
    b.count("events_indexed", 7)
    b.count("worker_restarts")
    a.gauge("messages_in_flight", 3)
    b.gauge("messages_in_flight", lambda: 4)
    a.observe("bulk_latency_seconds", 0.02)
    b.observe("bulk_latency_seconds", 0.2)
    # as a worker sends it: one JSON line
    sent = msgspec.json.decode(
        msgspec.json.encode(Report("telemetry", b.export())), type=Report
    ).telemetry
    assert sent is not None
    view = Telemetry()
    view.load(merge_snapshots([a.export(), sent]))
    assert view.counters["events_indexed"] == 12
    assert view.counters["worker_restarts"] == 1
    assert view.gauges()["messages_in_flight"] == 7
    histogram = view.histograms()["bulk_latency_seconds"]
    assert histogram.count == 2
    assert histogram.sum == pytest.approx(0.22)
    assert dict(histogram.cumulative())[0.025] == 1
    text = make_registry(view).get_sample_value("s3lb_events_indexed_total")
    assert text == 12


def test_an_empty_snapshot_sum_is_empty() -> None:
    assert merge_snapshots([]) == TelemetrySnapshot()


def test_worker_index_reads_the_environment() -> None:
    assert worker_index({"S3LB_WORKER": "2"}) == 2
    assert worker_index({}) is None
    assert worker_index({"S3LB_WORKER": "x"}) is None


def test_a_worker_tags_every_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    from s3lb.telemetry import configure_logging

    root = logging.getLogger("s3lb")
    saved = (root.handlers[:], root.level, root.propagate)
    configure_logging("info", "text")
    try:
        tag_logs(worker=3)
        Telemetry().info("s3lb is running", queues=1)
        logging.getLogger("s3lb.checkpoint").warning("plain %s", "line")
        err = capsys.readouterr().err.splitlines()
        assert err[0].endswith("INFO s3lb is running worker=3 queues=1"), err
        assert err[1].endswith("WARNING plain line worker=3"), err
    finally:
        root.handlers[:], root.level, root.propagate = saved
