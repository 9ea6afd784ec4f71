"""How many cores this process may use, for ``processes: auto``.

The CPU affinity mask (``taskset``, systemd's ``CPUAffinity=``), capped by a CPU quota
of the process's cgroup or of any cgroup above it (a container's ``--cpus``, systemd's
``CPUQuota=``): cgroup v2 ``cpu.max`` ("quota period", or "max" for none), cgroup v1
``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (-1 for none). A quota of 1.5 cores
allows 2 processes. :func:`cores_allowed` decides, pure; :func:`usable_cores` reads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["Quota", "cores_allowed", "quota_cores", "read_quotas", "usable_cores"]

#: A CPU quota as read: where, the quota, the period (microseconds, as text).
Quota = tuple[str, str, str]

_CGROUP = Path("/sys/fs/cgroup")
_SELF = Path("/proc/self/cgroup")


def quota_cores(quota: str, period: str) -> int | None:
    """The cores a quota allows, ``ceil(quota / period)`` and at least 1; ``None`` when
    there is no limit ("max", -1) or the text is not a quota."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:
        return None
    return max(1, math.ceil(q / p))


def cores_allowed(affinity: int, quotas: Iterable[Quota]) -> tuple[int, str]:
    """``affinity`` cores capped by the tightest quota; the count and why, for the log."""
    count = max(1, affinity)
    why = _cores(count)
    for where, quota, period in quotas:
        cores = quota_cores(quota, period)
        if cores is not None and cores < count:
            count = cores
            why = f"{_cores(cores)}: CPU quota {quota}/{period} of {where}, {affinity} in affinity"
    return count, why


def _cores(n: int) -> str:
    return "1 core" if n == 1 else f"{n} cores"


def read_quotas(root: Path = _CGROUP, membership: Path = _SELF) -> list[Quota]:
    """The CPU quotas of this process's cgroups (v2 and v1) and their ancestors, as far
    as they are mounted under ``root``; unreadable files are skipped."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        lines = []
    quotas: list[Quota] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2 (mounted at root, or at root/unified on a hybrid host)
            for folder in [*_upwards(root, path), *_upwards(root / "unified", path)]:
                fields = (_read(folder / "cpu.max") or "").split()
                if len(fields) == 2:
                    quotas.append((str(folder / "cpu.max"), fields[0], fields[1]))
        elif "cpu" in controllers.split(","):
            for folder in _upwards(root / controllers, path):
                quota = _read(folder / "cpu.cfs_quota_us")
                period = _read(folder / "cpu.cfs_period_us")
                if quota is not None and period is not None:
                    quotas.append((str(folder / "cpu.cfs_quota_us"), quota, period))
    return quotas


def usable_cores() -> tuple[int, str]:
    """The cores this process may use on this host, and why."""
    return cores_allowed(len(os.sched_getaffinity(0)), read_quotas())


def _upwards(base: Path, path: str) -> Iterator[Path]:
    """``base/path`` and each of its parents up to ``base`` itself."""
    folder = base / path.strip("/")
    while True:
        yield folder
        if folder in (base, folder.parent):
            return
        folder = folder.parent


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
