"""systemd integration without systemd: the notify protocol on a real datagram socket,
the watchdog on the autojump clock, journald-aware log lines, and the example
configuration shipped next to the unit."""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from s3lb.cli.systemd import Notifier, run_watchdog
from s3lb.config import load
from s3lb.telemetry import _TextFormatter, stderr_is_journal
from tests.paths import REPO
from tests.support import helpers
from tests.support.helpers import received


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A bound unix datagram socket (see :func:`tests.support.helpers.notify_socket`)."""
    with helpers.notify_socket(5) as bound:
        yield bound


def test_without_notify_socket_every_notification_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.stopping() and not notifier.watchdog()
    assert notifier.watchdog_interval is None


def test_ready_stopping_and_status_arrive_as_key_value_datagrams(
    notify_socket: tuple[str, socket.socket],
) -> None:
    path, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.ready(status="polling 2 queues")
    assert notifier.status("busy")
    assert notifier.stopping()
    assert notifier.watchdog()
    notifier.close()
    assert received(sock) == [
        "READY=1\nSTATUS=polling 2 queues",
        "STATUS=busy",
        "STOPPING=1",
        "WATCHDOG=1",
    ]


def test_an_abstract_namespace_address_is_written_with_an_at_sign() -> None:
    name = f"s3lb-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert sock.recv(100) == b"READY=1"
        notifier.close()


def test_a_socket_nobody_listens_on_drops_the_notification_without_raising(
    tmp_path: Path,
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.enabled
    assert notifier.ready() is False
    notifier.close()


def test_the_watchdog_interval_is_half_of_watchdog_usec_for_this_process_only() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"}
    assert Notifier(env).watchdog_interval == 15.0
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 15.0
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_interval is None
    assert Notifier({**env, "WATCHDOG_USEC": "junk"}).watchdog_interval is None


async def test_the_watchdog_pings_every_half_period_from_the_event_loop(
    autojump_clock: trio.testing.MockClock, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"})
    with trio.move_on_after(22):
        await run_watchdog(notifier)  # at 0, 5, 10, 15, 20 s
    notifier.close()
    assert received(sock) == ["WATCHDOG=1"] * 5


async def test_without_a_watchdog_the_watchdog_task_returns_at_once() -> None:
    with trio.fail_after(1):
        await run_watchdog(Notifier({"NOTIFY_SOCKET": "/run/x"}))


def record(level: int, message: str, **context: object) -> logging.LogRecord:
    rec = logging.LogRecord("s3lb", level, __file__, 1, message, None, None)
    rec.context = context  # type: ignore[attr-defined]
    return rec


def test_text_lines_under_journald_carry_a_syslog_priority_and_no_time() -> None:
    journal = _TextFormatter(journal=True)
    line = journal.format(record(logging.WARNING, "object gone", bucket="b", key="a b"))
    assert line == '<4>WARNING object gone bucket=b key="a b"'
    assert journal.format(record(logging.ERROR, "x")).startswith("<3>ERROR ")
    plain = _TextFormatter().format(record(logging.INFO, "stats", in_flight=3))
    assert plain.endswith("Z INFO stats in_flight=3") and plain[:2] == "20"


def test_stderr_is_the_journal_only_when_device_and_inode_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (tmp_path / "stderr").open("w") as fake_stderr:
        monkeypatch.setattr(sys, "stderr", fake_stderr)
        stat = os.fstat(fake_stderr.fileno())
        assert stderr_is_journal({"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"})
        assert not stderr_is_journal({"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino + 1}"})
        assert not stderr_is_journal({"JOURNAL_STREAM": "garbage"})
        assert not stderr_is_journal({})


def test_the_example_configuration_next_to_the_unit_is_valid_and_warns_of_nothing() -> None:
    config, warnings = load(REPO / "contrib" / "systemd" / "s3lb.yml", {"ES_PASSWORD": "x"})
    assert warnings == []
    assert config.settings.state_dir == "/var/lib/s3lb"
    assert config.metrics.listen == "127.0.0.1:9108"
    unit = (REPO / "contrib" / "systemd" / "s3lb.service").read_text()
    stop_timeout = int(unit.split("TimeoutStopSec=")[1].split("s")[0])
    assert stop_timeout >= config.settings.shutdown_timeout + 45
