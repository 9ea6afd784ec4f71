"""``s3lb`` as a user types it: the common options in any position, durations, help
texts, what an error looks like, a reader of stdout going away, the output file's
directory, and the state table in a terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Aws
from tests.paths import SEED
from tests.support.daemon import S3lbProcess
from tests.support.helpers import wait_until

ALB = SEED / "alb.log"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q"


def s3lb(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3lb", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def file_config(tmp_path: Path, extra: str = "", output: str = "./events.ndjson") -> Path:
    """A configuration with a file output, a key s3lb warns about, and a queue that
    only ``run`` and ``check`` would reach."""
    path = tmp_path / "s3lb.yml"
    path.write_text(
        textwrap.dedent(f"""\
            s3lb:
              state_dir: ./state
              shutdown_timeout: 5s
              wait_time: 1s
              inputs:
                - type: sqs
                  queues_url: ["{QUEUE}"]
                  log_format: alb
            output.file.path: "{output}"
            bogus: 1
        """)
        + extra
    )
    return path


# -- options wherever they are typed ----------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["state", "prune", "-c", "s3lb.yml"],
        ["state", "prune", "--config", "s3lb.yml", "--older-than", "7d"],
        ["-c", "s3lb.yml", "state", "prune"],
        ["state", "-c", "s3lb.yml", "prune", "--log-level", "debug"],
        ["state", "forget", "b/k", "--log-format", "text", "-c", "s3lb.yml"],
        ["--log-level", "info", "state", "--json", "--log-level", "warning", "-c", "s3lb.yml"],
        ["parse", "--log-level", "debug", "-c", "s3lb.yml", str(ALB), "--log-format", "json"],
    ],
)
def test_the_common_options_are_taken_before_and_after_any_command(
    argv: list[str], tmp_path: Path
) -> None:
    file_config(tmp_path)
    result = s3lb(*argv, cwd=tmp_path)
    assert "unrecognized arguments" not in result.stderr
    assert "Traceback" not in result.stderr
    # forget: the object is not in the (new) store, a failure of its own
    assert result.returncode == (1 if "forget" in argv else 0), result.stderr


@pytest.mark.parametrize(
    "command",
    ["run", "import", "check", "state", "state prune", "state forget b/k", "setup"],
)
def test_every_command_reads_the_config_and_log_options_after_its_name(
    command: str, tmp_path: Path
) -> None:
    result = s3lb(
        *command.split(),
        "--log-level",
        "debug",
        "--log-format",
        "json",
        "-c",
        "missing.yml",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "unrecognized arguments" not in result.stderr
    assert "missing.yml: cannot read the configuration file" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_log_options_typed_after_the_command_shape_the_log_lines(tmp_path: Path) -> None:
    file_config(tmp_path)
    result = s3lb("state", "prune", "-c", "s3lb.yml", "--log-format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warning = json.loads(result.stderr.splitlines()[0])
    assert warning["level"] == "warning"
    assert warning["msg"] == "configuration: unknown key 'bogus' ignored"
    quiet = s3lb("state", "prune", "-c", "s3lb.yml", "--log-level", "error", cwd=tmp_path)
    assert quiet.returncode == 0
    assert quiet.stderr == ""


def test_durations_are_taken_with_units_and_a_bad_one_is_a_usage_error(tmp_path: Path) -> None:
    result = s3lb("check", "--timeout", "5s", "-c", "missing.yml", cwd=tmp_path)
    assert "invalid" not in result.stderr, result.stderr
    assert result.stdout.startswith("FAIL  configuration: missing.yml: ")
    file_config(tmp_path)
    bad = s3lb("state", "prune", "--older-than", "a while", cwd=tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert "--older-than: expected a duration such as 30s, 5m, 2h or 1d" in bad.stderr


# -- help -------------------------------------------------------------------------------

COMMANDS = [
    [],
    ["run"],
    ["import"],
    ["check"],
    ["state"],
    ["state", "prune"],
    ["state", "forget"],
    ["setup"],
    ["replay-dead-letter"],
    ["parse"],
    ["demo"],
]
_SECTION = re.compile(r"^(positional arguments|options|common options.*):$")


def help_entries(text: str) -> dict[str, str]:
    """Each option or positional of a ``--help`` text, with its help."""
    entries: dict[str, str] = {}
    lines = text.splitlines()
    in_section = False
    current = ""
    for line in lines:
        if _SECTION.match(line):
            in_section = True
            continue
        if not line.strip():
            in_section = False
            continue
        if not in_section:
            continue
        indent = len(line) - len(line.lstrip())
        if indent < 20:  # an entry: NAME, or NAME  help…
            name, _, help_text = line.strip().partition("  ")
            current = name
            entries[current] = help_text.strip()
        else:  # the help of the entry above, or its continuation
            entries[current] = (entries[current] + " " + line.strip()).strip()
    return entries


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "s3lb")
def test_help_is_plain_text_with_a_description_and_help_for_every_option(
    command: list[str], tmp_path: Path
) -> None:
    result = s3lb(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "``" not in text
    assert not re.search(r":[a-z]+:`", text), text
    description = text.split("\n\n", 1)[1].split("\n\n", 1)[0]
    assert description.strip() and not _SECTION.match(description.strip()), text
    entries = help_entries(text)
    assert "-c FILE, --config FILE" in entries
    assert entries["-c FILE, --config FILE"].endswith("(default: ./s3lb.yml)")
    assert "--log-level {debug,info,warning,error}" in entries
    missing = [name for name, help_text in entries.items() if not help_text]
    assert not missing, f"no help for {missing}"


def test_help_shows_the_defaults_of_options_that_have_one(tmp_path: Path) -> None:
    check = help_entries(s3lb("check", "--help", cwd=tmp_path).stdout)
    assert "(default: 10s)" in check["--timeout DURATION"]
    parse = help_entries(s3lb("parse", "--help", cwd=tmp_path).stdout)
    assert "(default: 1048576)" in parse["--max-line-bytes N"]
    assert "(default: auto)" in parse["-f FORMAT, --format FORMAT"]
    forget = help_entries(s3lb("state", "forget", "--help", cwd=tmp_path).stdout)
    assert forget["BUCKET/KEY"]


# -- errors -----------------------------------------------------------------------------


def inject(tmp_path: Path, error: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """``s3lb parse`` with its work replaced by raising ``error``: what a user sees when
    an error escapes a command."""
    (tmp_path / "in.log").write_text("x\n")
    code = (
        "import sys, s3lb.cli.parse as p\n"
        "from s3lb.errors import SourceUnavailable\n"
        f"def boom(*args, **kwargs): raise {error}\n"
        "p.parse_stream = boom\n"
        "from s3lb.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "parse", *argv, "in.log"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_s3lb_error_escaping_a_command_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = inject(tmp_path, "SourceUnavailable('S3 is down: http://u:s3cr3t@s3.local')")
    assert result.returncode == 1
    assert result.stderr == "s3lb parse: S3 is down: http://u:***@s3.local\n"


def test_a_bug_says_so_and_how_to_report_it_with_the_traceback_only_in_debug(
    tmp_path: Path,
) -> None:
    result = inject(tmp_path, "ZeroDivisionError('division by zero')")
    assert result.returncode == 70
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("s3lb parse: unexpected error, a bug in s3lb ")
    assert lines[0].endswith(": ZeroDivisionError: division by zero")
    assert "report it" in lines[1] and "--log-level debug" in lines[1]
    debug = inject(tmp_path, "ZeroDivisionError('division by zero')", "--log-level", "debug")
    assert debug.returncode == 70
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert "unexpected error, a bug in s3lb" in debug.stderr


def test_a_missing_input_file_is_one_line_and_a_usage_error(tmp_path: Path) -> None:
    result = s3lb("parse", "-f", "alb", "no-such.log", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "s3lb parse: cannot read no-such.log: No such file or directory\n"


# -- a closed stdout --------------------------------------------------------------------


def es_config(tmp_path: Path) -> Path:
    path = tmp_path / "es.yml"
    path.write_text(
        "s3lb.inputs:\n  - type: sqs\n    log_format: auto\n"
        f"    queues_url: [{QUEUE}]\n"
        "output.elasticsearch.hosts: ['http://127.0.0.1:9']\n"
    )
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["parse", str(ALB)],
        ["setup", "--print", "-c", "es.yml"],
        ["state", "-c", "s3lb.yml"],
    ],
    ids=lambda argv: argv[0],
)
def test_a_reader_going_away_ends_the_command_quietly(argv: list[str], tmp_path: Path) -> None:
    """As ``s3lb setup --print | head`` does, with the reader gone before the first write."""
    file_config(tmp_path)
    es_config(tmp_path)
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "s3lb", *argv],
            cwd=tmp_path,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert result.returncode == 141, result.stderr  # 128 + SIGPIPE, as for `yes | head`
    for noise in ("Traceback", "BrokenPipeError", "Exception ignored"):
        assert noise not in result.stderr


# -- the output file's directory --------------------------------------------------------


def test_run_creates_a_missing_output_directory_and_writes_there(
    aws: Aws, daemon: Callable[..., S3lbProcess], tmp_path: Path
) -> None:
    queue, bucket = aws.quiet_queue()
    config = file_config(tmp_path, output="./out/logs/events.ndjson").read_text()
    run = daemon(config.replace(QUEUE, queue))
    aws.put(bucket, "a.log", ALB.read_bytes())
    out = tmp_path / "out" / "logs" / "events.ndjson"
    wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 5, 30, "events")
    assert "output=file path=./out/logs/events.ndjson" in run.log
    assert "worker processes: 1 (auto: output.file is written by one process)" in run.log
    assert run.stop() == 0, run.log
    assert "Traceback" not in run.log


def test_run_and_check_refuse_an_output_directory_that_cannot_be_created(
    aws: Aws, tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("a file where the directory would go\n")
    config = file_config(tmp_path, output="./blocker/out/events.ndjson")
    config.write_text(config.read_text().replace(QUEUE, aws.queue()))
    run = s3lb("run", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines()[-1] == (
        "s3lb run: configuration error: output.file.path: cannot write "
        "./blocker/out/events.ndjson: Not a directory"
    )
    check = s3lb("check", cwd=tmp_path)
    assert check.returncode == 1, check.stdout
    assert (
        "FAIL  output file ./blocker/out/events.ndjson: its directory cannot be created: "
        "blocker is not a directory"
    ) in check.stdout


# -- the state table in a terminal ------------------------------------------------------


def test_state_shortens_keys_to_the_terminal_and_prints_them_whole_into_a_pipe(
    tmp_path: Path,
) -> None:
    from s3lb.checkpoint import ObjectState, open_store

    file_config(tmp_path)
    key = "AWSLogs/123456789012/elasticloadbalancing/" + "x" * 120 + "/tail_20240501.log.gz"
    store = open_store(tmp_path / "state")
    store.commit([ObjectState(bucket="logs", key=key, version="v1", acked=3, offset=100)])
    store.close()

    piped = s3lb("state", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert f"s3://logs/{key}" in piped.stdout

    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "s3lb", "state", "--log-level", "error"],
            cwd=tmp_path,
            stdout=terminal,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "100"},
        )
        os.close(terminal)
        output = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(60) == 0
    finally:
        os.close(controller)
    lines = output.decode().replace("\r\n", "\n").splitlines()
    row = next(line for line in lines if line.startswith("in_progress"))
    assert len(row) <= 100, row
    assert row.rstrip().endswith("/tail_20240501.log.gz"), row
    assert "…" in row
    assert all(len(line) <= 100 for line in lines if line.startswith(("STATUS", "in_")))


def test_an_output_path_naming_a_directory_is_refused_by_check_and_run(
    aws: Aws, tmp_path: Path
) -> None:
    config = file_config(tmp_path, output="./out/")
    config.write_text(config.read_text().replace(QUEUE, aws.queue()))
    check = s3lb("check", "--timeout", "5s", cwd=tmp_path)
    assert check.returncode == 1, check.stdout
    assert "FAIL  output file ./out/: is a directory, not a file" in check.stdout
    run = s3lb("run", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines()[-1].startswith(
        "s3lb run: configuration error: output.file.path: ./out/ names a directory"
    )
    assert not (tmp_path / "out").exists()


def test_the_demo_into_a_pipe_closed_after_one_line_ends_quietly(tmp_path: Path) -> None:
    """``s3lb demo | head -1``: the daemon's file sink loses its reader mid-run; the
    readers then stop without an "internal error" traceback (the objects are left for
    redelivery) and the command exits as ``yes | head`` does."""
    read_end, write_end = os.pipe()
    # A pipe smaller than the demo's output: it is still writing when the reader goes.
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen(
        [sys.executable, "-m", "s3lb", "demo"],
        cwd=tmp_path,
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write_end)
    assert proc.stderr is not None
    with open(read_end) as stdout:
        assert stdout.readline().startswith('{"@metadata"')
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(120) == 141, err
    for noise in ("Traceback", "internal error", "BrokenResourceError"):
        assert noise not in err, err
