"""``s3lb parse`` as a user runs it: NDJSON on stdout, failures on stderr, exit codes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from tests.paths import SEED as SEED_DIR

SEED = SEED_DIR


def parse(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "s3lb", "parse", *args], input=stdin, capture_output=True, timeout=60
    )


def test_a_seed_sample_prints_one_document_per_line_in_order() -> None:
    result = parse("--format", "alb", str(SEED / "alb.log"))
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["type"] for d in docs] == ["http", "https", "h2", "ws", "wss"]
    assert docs[0]["@timestamp"] == "2016-08-10T22:08:42.945Z"


def test_gzip_input_from_stdin_with_key_detection_and_key_fields(tmp_path: Path) -> None:
    key = (
        "staging-app/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/08/10/"
        "123456789012_elasticloadbalancing_us-east-2_app.my-lb.50dc6c495c0c9188_20160810T2210Z"
        "_192.168.131.39_2soosksg.log.gz"
    )
    result = parse(
        "--key",
        key,
        "--key-regex",
        r"^(?P<environment>[^\-]+)-(?P<application>[^/]+)",
        stdin=gzip.compress((SEED / "alb.log").read_bytes()),
    )
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(docs) == 5
    assert {(d["environment"], d["application"]) for d in docs} == {("staging", "app")}


def test_unparseable_lines_go_to_stderr_with_line_numbers_and_exit_1(tmp_path: Path) -> None:
    good = (SEED / "alb.log").read_bytes().splitlines()
    path = tmp_path / "mixed.log"
    path.write_bytes(b"\n".join([good[0], b"not an alb line", good[1]]) + b"\n")
    result = parse("-f", "alb", str(path))
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr.decode().startswith("line 2: parse_failed: ")


def test_an_unknown_format_is_a_usage_error() -> None:
    result = parse("-f", "syslog", str(SEED / "alb.log"))
    assert result.returncode == 2
    assert b"known formats" in result.stderr


def test_an_option_without_a_value_or_a_bad_line_limit_is_a_usage_error() -> None:
    """``-o timestamp_field`` used to be dropped silently."""
    result = parse("-f", "json", "-o", "timestamp_field", str(SEED / "alb.log"))
    assert result.returncode == 2
    assert result.stderr == b"s3lb parse: -o expects NAME=VALUE, got 'timestamp_field'\n"
    zero = parse("--max-line-bytes", "0", str(SEED / "alb.log"))
    assert zero.returncode == 2
    assert b"--max-line-bytes: expected a positive number of bytes, got '0'" in zero.stderr


def test_a_closed_stdout_ends_parse_quietly(tmp_path: Path) -> None:
    """``s3lb parse big.log | head -1``: no BrokenPipeError traceback."""
    big = tmp_path / "big.log"
    big.write_bytes(((SEED / "alb.log").read_bytes().rstrip(b"\n") + b"\n") * 2000)
    process = subprocess.Popen(
        [sys.executable, "-m", "s3lb", "parse", "-f", "alb", str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert json.loads(process.stdout.readline())["type"] == "http"
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(60) == 141
    assert stderr == b""


def test_parse_starts_without_the_daemons_libraries() -> None:
    """Start-up is part of every ``s3lb parse`` run: the AWS, HTTP, event-loop, store and
    YAML libraries stay unloaded, with common options before the command too."""
    args = ["--log-level", "warning", "parse", "-f", "alb", str(SEED / "alb.log")]
    code = (
        "import sys\n"
        "from s3lb.cli.main import main\n"
        f"status = main({args!r})\n"
        "loaded = {name.split('.')[0] for name in sys.modules}\n"
        "heavy = {'trio', 'httpx', 'botocore', 'lmdb', 'yaml'}\n"
        "print(status, sorted(loaded & heavy), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert len(result.stdout.splitlines()) == 5
    assert result.stderr == b"0 []\n"


def test_a_large_file_keeps_line_numbers_and_order_piece_after_piece(tmp_path: Path) -> None:
    """Past its head, a file is cut and parsed a piece of text at a time."""
    good = (SEED / "alb.log").read_bytes().splitlines()
    lines = [good[i % len(good)] for i in range(3000)]
    lines[2000] = b"not an alb line"
    lines[2500] = b"z" * 3000
    lines[2700] = good[2700 % len(good)] + b"\r"
    path = tmp_path / "big.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = parse("-f", "alb", "--max-line-bytes", "2500", str(path))
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "line 2001: parse_failed: alb: expected at least 18 fields, got 4",
        "line 2501: oversize: line longer than 2500 bytes",
    ]
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    types = ["http", "https", "h2", "ws", "wss"]
    assert [d["type"] for d in docs] == [
        types[i % len(types)] for i in range(3000) if i not in (2000, 2500)
    ]
