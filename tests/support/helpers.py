"""Small helpers shared by test modules and benches: polling, document ids, S3 event
records, the ALB sample, gzip, and ``s3lb`` one-shot commands."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from s3lb.model import ObjectRef, document_id
from tests.paths import SEED

__all__ = [
    "ALB",
    "ALB_LINES",
    "KEY_FIELDS",
    "big_alb",
    "event_record",
    "expected_ids",
    "free_port",
    "gz",
    "notify_socket",
    "s3lb_cli",
    "state_json",
    "wait_until",
]

#: ``key_regex_fields`` of the integration tests: ``prod-web/…`` gives environment
#: ``prod`` and application ``web``.
KEY_FIELDS = r"^(?P<environment>[^\-]+)-(?P<application>[^/\-]+)"

#: s3logsbeat's ALB sample (no final newline) and its line count.
ALB = (SEED / "alb.log").read_bytes()
ALB_LINES = ALB.count(b"\n") + 1


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def expected_ids(bucket: str, key: str, etag: str, lines: int) -> set[str]:
    """The ``_id`` s of lines 1..``lines`` of the object."""
    ref = ObjectRef(bucket, key, etag)
    return {document_id(ref, n) for n in range(1, lines + 1)}


def event_record(bucket: str, key: str, etag: str, encoded_key: str) -> dict[str, object]:
    """One S3 ``ObjectCreated:Put`` record of a notification (``encoded_key`` as AWS
    writes it, URL-encoded)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2025-10-21T14:55:02.137Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": encoded_key, "size": 1, "eTag": etag},
        },
    }


def worker_pids(log: str) -> dict[int, int]:
    """The latest pid of each worker process (``run`` or ``import``), from the
    supervisor's log."""
    found = re.findall(r"worker process started worker=(\d+) pid=(\d+)", log)
    return {int(w): int(p) for w, p in found}


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def notify_socket(timeout: float) -> Iterator[tuple[str, socket.socket]]:
    """A bound unix datagram socket for ``NOTIFY_SOCKET`` and its path (short: sun_path
    holds 108 bytes); receiving times out after ``timeout`` seconds."""
    with tempfile.TemporaryDirectory(prefix="s3lb-") as directory:
        path = os.path.join(directory, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            sock.settimeout(timeout)
            yield path, sock


def big_alb(lines: int) -> bytes:
    """``lines`` lines made by repeating the ALB sample, with a final newline."""
    sample = ALB.splitlines()
    return b"\n".join(sample[i % len(sample)] for i in range(lines)) + b"\n"


def gz(data: bytes, level: int = 6) -> bytes:
    """``data`` gzipped."""
    return gzip.compress(data, level)


def s3lb_cli(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m s3lb ARGS`` to its end, output captured as text, never raising."""
    return subprocess.run(
        [sys.executable, "-m", "s3lb", *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def state_json(config_path: Path) -> dict[str, Any]:
    """``s3lb state --json`` of the configuration at ``config_path``."""
    out = subprocess.run(
        [sys.executable, "-m", "s3lb", "state", "-c", str(config_path), "--json"],
        cwd=config_path.parent,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on ``sock`` (a notify socket), without waiting."""
    timeout = sock.gettimeout()
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        return out
    finally:
        sock.settimeout(timeout)


def scrape(url: str) -> dict[str, float]:
    """One scrape of a Prometheus endpoint: unlabelled samples by name."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.labels
    }
