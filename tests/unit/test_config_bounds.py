"""Values that pass type conversion and then hurt at run time are refused at load
(issue #16, item 10): a ConfigError naming the key, exit 2, one line, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from s3lb.config import load, loads
from s3lb.errors import ConfigError

OUT = "\noutput.file.path: '-'"
ES = "\noutput.elasticsearch:\n  hosts: ['http://127.0.0.1:9200']\n"


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        loads(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        ("s3lb: {stats_interval: 0}" + OUT, "s3lb.stats_interval", "at least 1s"),
        ("s3logsbeat: {stats_interval: 10ms}" + OUT, "s3logsbeat.stats_interval", "at least 1s"),
        ("s3lb: {}" + ES + "  timeout: 0", "output.elasticsearch.timeout", "at least 100ms"),
        ("s3lb: {}" + ES + "  backoff.init: 0", "output.elasticsearch.backoff.init", "above 0"),
        (
            "s3lb: {}" + ES + "  backoff: {init: 10s, max: 1s}",
            "output.elasticsearch.backoff.max",
            "at least backoff.init",
        ),
        ("s3lb: {checkpoint.map_size: -1}" + OUT, "s3lb.checkpoint.map_size", "at least 65536"),
        ("s3lb: {checkpoint.map_size: 1e20}" + OUT, "s3lb.checkpoint.map_size", "int"),
        (
            "s3lb: {checkpoint: {map_size: 100000000000000000000}}" + OUT,
            "s3lb.checkpoint.map_size",
            "at most 1099511627776",
        ),
        ("s3lb: {}" + ES + "  worker: 1000000000", "output.elasticsearch.worker", "at most 1024"),
        ("s3lb: {}" + ES + "  worker: 0", "output.elasticsearch.worker", "at least 1"),
        ("s3lb: {object_workers: 5000}" + OUT, "s3lb.object_workers", "at most 1024"),
        (
            "s3lb: {max_inflight_messages: 1000000000}" + OUT,
            "s3lb.max_inflight_messages",
            "at most 120000",
        ),
        ("s3lb: {shutdown_timeout: .inf}" + OUT, "s3lb.shutdown_timeout", "finite"),
        ("s3lb: {shutdown_timeout: .nan}" + OUT, "s3lb.shutdown_timeout", "finite"),
    ],
)
def test_a_value_that_would_hurt_is_refused_naming_its_key(
    text: str, path: str, reason: str
) -> None:
    error = error_of(text)
    assert error.path == path
    assert reason in str(error)


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "sqs.us-east-1.amazonaws.com/123456789012/q",
        "ftp://sqs.us-east-1.amazonaws.com/123456789012/q",
        "https:///123456789012/q",
        "https://sqs.us-east-1.amazonaws.com",
        "https://sqs.us-east-1.amazonaws.com/",
        "http://[::1/1/q",
    ],
)
def test_a_queue_url_must_be_http_with_a_host_and_a_path(url: str) -> None:
    error = error_of(f"s3lb:\n  inputs:\n    - {{type: sqs, queues_url: ['ok', {url!r}]}}" + OUT)
    # the first bad one is named, with its index
    assert error.path == "s3lb.inputs[0].queues_url[0]"
    error = error_of(
        f"s3lb:\n  inputs:\n    - {{type: sqs, queues_url: ['http://sqs/1/q', {url!r}]}}" + OUT
    )
    assert error.path == "s3lb.inputs[0].queues_url[1]"
    assert "not a queue URL" in str(error) and url in str(error)


def test_sane_values_still_load() -> None:
    config, _ = loads(
        "s3lb:\n  stats_interval: 1s\n  object_workers: 1024\n  checkpoint.map_size: 65536\n"
        "  inputs:\n    - {type: sqs, queues_url: ['https://sqs.eu-west-1.amazonaws.com/1/q']}\n"
        "    - {type: sqs, queues_url: ['http://127.0.0.1:4566/000000000000/q']}"
        + ES
        + "  timeout: 100ms\n  worker: 1024\n  backoff: {init: 1s, max: 1s}"
    )
    assert config.settings.checkpoint.map_size == 65536
    assert config.output.elasticsearch is not None
    assert config.output.elasticsearch.worker == 1024


def test_a_file_that_is_not_utf8_names_the_file_and_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "s3lb.yml"
    path.write_bytes("s3lb:\n  state_dir: /var/lib/s3lb-caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.path == str(path)
    assert "not UTF-8" in str(info.value) and "byte 0xe9 at offset 36 (line 2)" in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b"s3lb: {stats_interval: 0}\noutput.file.path: '-'\n", "s3lb.stats_interval"),
        (
            b"s3lb:\n  inputs: [{type: sqs, queues_url: ['not a url']}]\noutput.file.path: '-'\n",
            "s3lb.inputs[0].queues_url[0]",
        ),
        (b"s3lb: {checkpoint.map_size: -1}\noutput.file.path: '-'\n", "checkpoint.map_size"),
        (b"s3lb: {state_dir: caf\xe9}\noutput.file.path: '-'\n", "not UTF-8"),
    ],
)
def test_run_refuses_them_with_exit_2_and_one_line(tmp_path: Path, body: bytes, key: str) -> None:
    config = tmp_path / "s3lb.yml"
    config.write_bytes(body)
    proc = subprocess.run(
        [sys.executable, "-m", "s3lb", "run", "-c", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert key in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "state").exists()  # refused before anything was created
