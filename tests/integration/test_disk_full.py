"""A full disk and a store truncated under a running process (issue #16, item 4).

LMDB memory-maps its files: on a full filesystem its first write to the sparse lock
file was a SIGBUS (exit 135, nothing logged), and reading a page of a data file
truncated under the process was one too. Each must be one clear line and exit 1.

The full disk is a small tmpfs mounted for the test (root only: skipped otherwise,
with the reason) and filled with one file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.configs import s3lb_config
from tests.support.helpers import s3lb_cli

pytestmark = pytest.mark.slow

# s3lb must not reach anything: AWS calls go to a closed port.
ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
}


def _mount_tmpfs(where: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size``; the reason it cannot be, or None."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root"
    where.mkdir()
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError as exc:
        return f"cannot run mount: {exc}"
    if proc.returncode != 0:
        return f"cannot mount a tmpfs here: {proc.stderr.strip()}"
    return None


def _fill(mount: Path) -> None:
    """Write a file until the filesystem has no block left."""
    fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    assert os.statvfs(mount).f_bavail == 0


@pytest.fixture
def full_fs(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 256 KiB tmpfs with no byte free; unmounted afterwards."""
    mount = tmp_path / "fs"
    reason = _mount_tmpfs(mount, "256k")
    if reason:
        pytest.skip(reason)
    try:
        _fill(mount)
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _config(tmp_path: Path, state_dir: Path) -> Path:
    path = tmp_path / "s3lb.yml"
    path.write_text(
        s3lb_config(
            state_dir=state_dir,
            inputs=[
                {"type": "sqs", "queues_url": ["http://127.0.0.1:1/123456789012/q"]},
                {"type": "s3", "buckets": ["s3://logs"]},
            ],
            file={"path": str(tmp_path / "out.ndjson")},
            shutdown_timeout=None,
            wait_time=None,
        )
    )
    return path


def _s3lb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return s3lb_cli(*args, cwd=cwd, env=ENV)


@pytest.mark.parametrize("command", ["run", "import"])
def test_a_full_disk_at_first_start_is_one_line_and_exit_1(
    tmp_path: Path, full_fs: Path, command: str
) -> None:
    state_dir = full_fs / "state"
    proc = _s3lb(command, "-c", str(_config(tmp_path, state_dir)), cwd=tmp_path)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)  # not 135 / -7 (SIGBUS)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "no space left for the checkpoint store" in lines[0]
    assert str(state_dir) in lines[0] and "0 bytes free" in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not list(state_dir.glob("quarantine-*"))  # a full disk is not corruption


def test_an_existing_store_on_a_full_disk_is_refused_not_quarantined(tmp_path: Path) -> None:
    """A store written while there was room, reopened with the disk full: the isolated
    check must not take a crash for corruption, and the store is left as it was."""
    mount = tmp_path / "fs"
    reason = _mount_tmpfs(mount, "4m")
    if reason:
        pytest.skip(reason)
    try:
        state_dir = mount / "state"
        seed = (
            "import sys\nfrom s3lb.checkpoint import ObjectState, open_store\n"
            "s = open_store(sys.argv[1], map_size=1 << 30)\n"
            "s.commit([ObjectState(bucket='b', key='k', version='v', acked=7)])\ns.close()\n"
        )
        subprocess.run([sys.executable, "-c", seed, str(state_dir)], check=True, timeout=60)
        # Simulate a store whose lock file LMDB left sparse (older s3lb), and no room left.
        lock = state_dir / "checkpoint" / "lock.mdb"
        size = lock.stat().st_size
        lock.unlink()
        with lock.open("wb") as f:
            f.truncate(size)
        _fill(mount)
        proc = _s3lb("run", "-c", str(_config(tmp_path, state_dir)), cwd=tmp_path)
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        assert "no space left for the checkpoint store" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not list(state_dir.glob("quarantine-*"))
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_check_reports_free_space_and_fails_on_a_full_disk(tmp_path: Path, full_fs: Path) -> None:
    proc = _s3lb(
        "check", "-c", str(_config(tmp_path, full_fs / "state")), "--timeout", "2", cwd=tmp_path
    )
    assert proc.returncode == 1, proc.stdout
    line = next(x for x in proc.stdout.splitlines() if " state_dir " in x)
    assert line.startswith("FAIL  state_dir"), line
    assert "0 bytes free" in line and "needs" in line


def test_check_reports_free_space_when_there_is_room(tmp_path: Path) -> None:
    proc = _s3lb(
        "check", "-c", str(_config(tmp_path, tmp_path / "state")), "--timeout", "2", cwd=tmp_path
    )
    line = next(x for x in proc.stdout.splitlines() if " state_dir " in x)
    assert line.startswith("ok    state_dir"), line
    assert "bytes free, the checkpoint store needs" in line


TRUNCATE = r"""
import os, sys, trio
from s3lb.checkpoint import ObjectState, open_checkpoint_store
from s3lb.errors import CheckpointCorrupt

async def main(state_dir):
    async with open_checkpoint_store(state_dir, verify="off") as store:
        await store.commit([ObjectState(bucket="b", key=f"k{i}", version="v") for i in range(500)])
        os.truncate(store.path / "data.mdb", 0)  # e.g. a `: > data.mdb` by mistake
        try:
            await store.get("b", "k1", "v")
        except CheckpointCorrupt as exc:
            print(exc)
            sys.exit(1)

trio.run(main, sys.argv[1])
"""


def test_a_store_truncated_under_a_running_process_is_an_error_not_a_sigbus(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", TRUNCATE, str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr)  # not -7 (SIGBUS)
    assert "was truncated while in use" in proc.stdout
    assert "Traceback" not in proc.stderr
