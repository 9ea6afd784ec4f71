"""Process tier (T2) helpers: ``s3lb run`` as a subprocess against real services on
127.0.0.1 (moto in server mode for S3/SQS, the fake cluster's HTTP server or the real
OpenSearch node), restarted as often as a scenario needs, each run with its own log.

:func:`upload` puts a corpus into moto and :func:`notify` sends hand-made notifications
(several objects per message); :func:`state` reads ``s3lb state --json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tests.conftest import Aws, wait_until
from tests.reliability.corpus import Corpus, CorpusObject, notification

__all__ = ["Runner", "daemon_config", "notify", "state", "upload"]


def daemon_config(
    state_dir: Path,
    queues: Sequence[str],
    es_url: str,
    *,
    es: dict[str, Any] | None = None,
    **settings: Any,
) -> str:
    """A configuration for the process tier (JSON is YAML); ``settings`` are ``s3lb.*``
    keys, ``es`` extra ``output.elasticsearch.*`` keys."""
    body: dict[str, Any] = {
        "state_dir": str(state_dir),
        "shutdown_timeout": "5s",
        "wait_time": "1s",
        "stats_interval": "1h",
        "object_workers": 4,
        "inputs": [
            {
                "type": "sqs",
                "queues_url": list(queues),
                "log_format": "auto",
                "poll_frequency": "100ms",
            }
        ],
        **settings,
    }
    output = {
        "hosts": [es_url],
        "index": "rel-%{+yyyy.MM.dd}",
        "flush_interval": "200ms",
        "bulk_max_size": 200,
        "backoff.init": "200ms",
        "backoff.max": "1s",
        **(es or {}),
    }
    return json.dumps({"s3lb": body, "output.elasticsearch": output}, indent=1)


def upload(aws: Aws, bucket: str, corpus: Corpus | Iterable[CorpusObject]) -> None:
    """Put every object into ``bucket`` (moto) and note its ETag."""
    objects = corpus.objects if isinstance(corpus, Corpus) else list(corpus)
    for obj in objects:
        obj.bucket = bucket
        obj.etag = aws.s3.put_object(Bucket=bucket, Key=obj.key, Body=obj.body)["ETag"].strip('"')


def notify(aws: Aws, queue: str, objects: Sequence[CorpusObject], per_message: int = 1) -> None:
    """Send notifications naming ``objects``, ``per_message`` objects per message."""
    for i in range(0, len(objects), per_message):
        aws.send(queue, notification(objects[i : i + per_message]))


def state(config_path: Path) -> dict[str, Any]:
    """``s3lb state --json`` of the configuration at ``config_path``."""
    out = subprocess.run(
        [sys.executable, "-m", "s3lb", "state", "-c", str(config_path), "--json"],
        cwd=config_path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


class Runner:
    """Starts ``s3lb run`` again and again with one configuration; every run's output
    goes to its own log file, and :attr:`logs` reads them all."""

    def __init__(
        self,
        tmp_path: Path,
        config: str,
        env: dict[str, str] | None = None,
        *,
        global_args: Sequence[str] = (),
        umask: int = -1,
    ) -> None:
        self.global_args = list(global_args)  # e.g. ["--log-level", "debug"]
        self.umask = umask
        self.dir = tmp_path
        self.config_path = tmp_path / "s3lb.yml"
        self.config_path.write_text(config)
        self.env = env or {}
        self.runs: list[Path] = []
        self.process: subprocess.Popen[bytes] | None = None

    def start(
        self, env: dict[str, str] | None = None, *, wait: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start a run (``env`` adds variables, e.g. ``S3LB_CRASH_AT``); with ``wait``,
        return once it polls."""
        self.stop_hard()
        log = self.dir / f"run-{len(self.runs) + 1:03d}.log"
        self.runs.append(log)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "s3lb",
                    *self.global_args,
                    "run",
                    "-c",
                    str(self.config_path),
                ],
                cwd=self.dir,
                env={**os.environ, **self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                umask=self.umask,
            )
        if wait:
            wait_until(
                lambda: "s3lb is running" in self.log or self.process.poll() is not None,  # type: ignore[union-attr]
                30,
                "the daemon to poll",
            )
            assert self.process.poll() is None, self.log
        return self.process

    @property
    def log(self) -> str:
        """The current run's log."""
        return self.runs[-1].read_text(errors="replace") if self.runs else ""

    @property
    def logs(self) -> str:
        """Every run's log, in order."""
        return "".join(p.read_text(errors="replace") for p in self.runs)

    def wait(self, timeout: float) -> int:
        """Wait for the current run to exit; its status."""
        assert self.process is not None
        return self.process.wait(timeout)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait; the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the current run (if alive) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop_hard(self) -> None:
        """Make sure no run is alive."""
        self.kill()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def until(predicate: Any, timeout: float, what: str) -> None:
    """:func:`tests.conftest.wait_until`, re-exported."""
    wait_until(predicate, timeout, what)


def sleep(seconds: float) -> None:
    """A plain sleep (process-tier timing is wall-clock by nature)."""
    time.sleep(seconds)
