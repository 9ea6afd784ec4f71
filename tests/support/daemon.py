"""The one runner of ``s3lb`` as a subprocess, for tests and benches.

:class:`S3lbProcess` writes a configuration, starts ``s3lb [global args] COMMAND -c
CONFIG`` as often as asked (each run with its own log file), waits for a log line,
stops with SIGTERM (returning the exit code) or kills with SIGKILL.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

__all__ = ["READY", "S3lbProcess"]

#: The line ``s3lb run`` logs once it polls.
READY = "s3lb is running"


class S3lbProcess:
    """``s3lb COMMAND -c CONFIG`` in ``workdir``, restartable; every run's output goes
    to ``NAME-NNN.log`` (or ``.out``/``.err`` with ``split_output``).

    ``env`` adds to ``os.environ`` (or replaces it, with ``inherit_env=False``);
    ``prefix`` goes before ``-m s3lb`` (a profiler); ``global_args`` before the command.
    """

    def __init__(
        self,
        workdir: Path,
        config: str,
        env: Mapping[str, str] | None = None,
        *,
        command: Sequence[str] = ("run",),
        global_args: Sequence[str] = (),
        prefix: Sequence[str] = (),
        name: str = "s3lb",
        umask: int = -1,
        inherit_env: bool = True,
        split_output: bool = False,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.dir = workdir
        self.name = name
        self.config_path = workdir / f"{name}.yml"
        self.config_path.write_text(config)
        self.env = dict(env or {})
        self.command = list(command)
        self.global_args = list(global_args)
        self.prefix = list(prefix)
        self.umask = umask
        self.inherit_env = inherit_env
        self.split_output = split_output
        self.runs: list[tuple[Path, Path]] = []  # (stdout, stderr) of every run
        self.process: subprocess.Popen[bytes] | None = None

    # -- starting ------------------------------------------------------------------------

    def _paths(self) -> tuple[Path, Path]:
        """Fresh output files (two runners may share ``workdir`` and ``name``)."""
        suffixes = (".out", ".err") if self.split_output else (".log", ".log")
        for n in itertools.count(1):
            out, err = (self.dir / f"{self.name}-{n:03d}{s}" for s in suffixes)
            if not out.exists() and not err.exists():
                return out, err
        raise AssertionError("unreachable")

    def start(
        self,
        env: Mapping[str, str] | None = None,
        *,
        args: Sequence[str] = (),
        wait: bool = False,
        timeout: float = 30,
    ) -> subprocess.Popen[bytes]:
        """Start a run (any previous one is killed first); ``env`` adds variables (e.g.
        ``S3LB_CRASH_AT``), ``args`` go after the configuration. With ``wait``, return
        once the log says :data:`READY`."""
        self.kill()
        out_path, err_path = self._paths()
        self.runs.append((out_path, err_path))
        base = dict(os.environ) if self.inherit_env else {}
        argv = [sys.executable, *self.prefix, "-m", "s3lb", *self.global_args, *self.command]
        with contextlib.ExitStack() as files:
            out = files.enter_context(out_path.open("wb"))
            err = files.enter_context(err_path.open("wb")) if self.split_output else None
            self.process = subprocess.Popen(
                [*argv, "-c", str(self.config_path), *args],
                cwd=self.dir,
                env={**base, **self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT if err is None else err,
                umask=self.umask,
            )
        if wait:
            self.wait_for(READY, timeout)
        return self.process

    # -- output --------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        """The current run's (combined, or standard error) output file."""
        return self.runs[-1][1]

    @property
    def stdout(self) -> str:
        """The current run's standard output (the whole log unless ``split_output``)."""
        return self.runs[-1][0].read_text(errors="replace") if self.runs else ""

    @property
    def stderr(self) -> str:
        """The current run's standard error (the whole log unless ``split_output``)."""
        return self.runs[-1][1].read_text(errors="replace") if self.runs else ""

    @property
    def log(self) -> str:
        """The current run's output (standard error first when split)."""
        if not self.runs:
            return ""
        return self.stderr + self.stdout if self.split_output else self.stdout

    @property
    def logs(self) -> str:
        """Every run's output, in order."""
        return "".join(
            out.read_text(errors="replace")
            + (err.read_text(errors="replace") if err != out else "")
            for out, err in self.runs
        )

    def wait_for(self, text: str, timeout: float = 30) -> None:
        """Wait until the current run logs ``text``; fail if it exits first."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while text not in self.log:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"s3lb exited ({self.process.returncode}) before {text!r}:\n{self.log[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {text!r}")
            time.sleep(0.02)

    # -- stopping ------------------------------------------------------------------------

    def alive(self) -> bool:
        """Whether the current run has started and not exited."""
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for the current run to exit; its status."""
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (if still running) and wait; the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    terminate = stop

    def kill(self) -> None:
        """SIGKILL the current run (if alive) and reap it."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """Wait for the exit (kill on timeout); the status, stdout and stderr."""
        try:
            status = self.wait(timeout)
        finally:
            self.kill()
        return status, self.stdout, self.stderr

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()
