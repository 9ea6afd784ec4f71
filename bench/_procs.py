"""Processes seen from /proc: a process tree, its CPU seconds and resident memory, and
core pinning (every thread of a process, or of its tree)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from _base import CLK_TCK


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's)."""
    out = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(p) for p in (task / "children").read_text().split()]
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (worker processes count as the daemon's)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += child_pids(p)
    return out


def status_kib(pid: int, field: str) -> int:
    """``VmRSS``, ``VmHWM``… of ``pid`` in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` (its threads included; reaped children included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the ")": state is fields[0]; utime, stime, cutime, cstime are 11..14.
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in tree(pid))


class RssSampler:
    """Samples the VmRSS of a process tree every ``interval`` seconds: the peak of the
    sum (``peak_kib``) and each process's own peak (``peaks``, by pid)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.peaks: dict[int, int] = {}
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            each = {p: status_kib(p, "VmRSS") for p in tree(self.pid)}
            for p, k in each.items():
                self.peaks[p] = max(self.peaks.get(p, 0), k)
            kib = sum(each.values())
            if kib:
                self.samples.append((time.monotonic() - t0, kib))
                self.peak_kib = max(self.peak_kib, kib)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- core pinning ------------------------------------------------------------------------


def core_sets() -> tuple[set[int], set[int]] | None:
    """The cores this process may use, split in two disjoint halves (the cluster's first,
    the shipper's second: ``{0}`` and ``{1}`` on 2 cores); None with a single core."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


def pin(pid: int, cpus: set[int], *, children: bool = True) -> int:
    """Pin every thread of ``pid`` (and of its descendants) to ``cpus``; how many.

    ``sched_setaffinity(pid)`` moves one thread on Linux, so each of /proc/PID/task/*
    is moved; a thread started meanwhile inherits its creator's set, hence the passes
    until one finds nothing new."""
    done: set[int] = set()
    while True:
        new = [
            int(task.name)
            for p in (tree(pid) if children else [pid])
            for task in _tasks(p)
            if int(task.name) not in done
        ]
        if not new:
            return len(done)
        for tid in new:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cpus)
            done.add(tid)


def thread_cpus(pid: int, *, children: bool = True) -> set[int]:
    """The union of the cores the threads of ``pid`` (and its descendants) may run on."""
    out: set[int] = set()
    for p in tree(pid) if children else [pid]:
        for task in _tasks(p):
            with contextlib.suppress(OSError):
                out |= os.sched_getaffinity(int(task.name))
    return out


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Run the block with the calling thread on ``cpus`` (what it starts inherits them)."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _tasks(pid: int) -> list[Path]:
    try:
        return list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
