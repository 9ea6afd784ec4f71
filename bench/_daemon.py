"""``s3lb run`` as a subprocess: the benches' configuration and the runner (the tests'
own, ``tests/support``), with the daemon's Prometheus counters."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import _base  # noqa: F401  (this checkout's tests on sys.path first)

from tests.support import configs
from tests.support.daemon import S3lbProcess

#: ``s3lb.*`` keys of every bench daemon; ``processes: auto`` is what a user gets (the
#: tests' builder pins 1).
_SETTINGS: dict[str, Any] = {"shutdown_timeout": "30s", "stats_interval": "5s", "processes": "auto"}


def s3lb_config(
    queue_url: str,
    es_url: str,
    *,
    state_dir: Path,
    metrics_port: int,
    index: str = "bench-s3lb-%{+yyyy.MM.dd}",
    settings: dict[str, Any] | None = None,
    output: dict[str, Any] | None = None,
    input_options: dict[str, Any] | None = None,
) -> str:
    """The benches' configuration (:func:`tests.support.configs.s3lb_config`) for one
    queue of ALB logs (``input_options``: the ``sqs`` input's, over the builder's)."""
    return configs.s3lb_config(
        state_dir=state_dir,
        queues=[queue_url],
        log_format="alb",
        input_options=input_options,
        es_url=es_url,
        es={"index": index, "flush_interval": None, "backoff.max": "2s", **(output or {})},
        metrics=f"127.0.0.1:{metrics_port}",
        **{**_SETTINGS, **(settings or {})},
    )


class Daemon(S3lbProcess):
    """``s3lb run`` (or ``python -m pyinstrument … -m s3lb run``), started at once, with
    its Prometheus counters; ``env`` is the whole environment."""

    def __init__(
        self,
        config: str,
        workdir: Path,
        env: dict[str, str],
        *,
        profile: Path | None = None,
        name: str = "s3lb",
    ) -> None:
        prefix: list[str] = []
        if profile is not None:  # text, or html when the name ends in .html
            renderer = "html" if profile.suffix == ".html" else "text"
            prefix = ["-m", "pyinstrument", "-r", renderer, "-o", str(profile)]
        super().__init__(workdir, config, env, name=name, prefix=prefix, inherit_env=False)
        self.metrics_url = "http://" + json.loads(config)["metrics"]["listen"] + "/metrics"
        self.start(wait=True, timeout=60)

    def metrics(self) -> dict[str, float]:
        """The Prometheus counters, by name without labels (``s3lb_events_indexed_total``)."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name.split("{", 1)[0]] = float(value)
        return out

    def counter(self, name: str) -> float:
        return self.metrics().get(f"s3lb_{name}_total", 0.0)

    def wait_counter(self, name: str, target: float, timeout: float, poll: float = 0.05) -> float:
        """Wait until counter ``name`` reaches ``target``; return the wall time it did."""
        deadline = time.monotonic() + timeout
        while True:
            if self.counter(name) >= target:
                return time.perf_counter()
            if not self.alive():
                code = self.process and self.process.returncode
                raise RuntimeError(f"s3lb exited ({code}):\n{self.log[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"timed out waiting for {name} >= {target} (at {self.counter(name)})"
                )
            time.sleep(poll)

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM; the exit status (SIGKILL's after ``timeout``)."""
        try:
            return super().stop(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.wait(10)
