"""The README's first command: ``s3lb demo`` ships the bundled samples end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_demo_ships_every_bundled_sample_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    result = subprocess.run(
        [sys.executable, "-m", "s3lb", "demo", "-o", str(out)],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr.decode()
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    # 5 ALB + 4 ELB + 2 CloudFront + 22 VPC flow + 20 CloudTrail records in the samples.
    assert len(docs) == 53
    assert len({d["@metadata"]["_id"] for d in docs}) == 53
    summary = result.stderr.decode().strip().splitlines()[-1]
    assert summary.startswith("s3lb demo: 5 objects, 53 events written")
    assert "0 dead-lettered, 6 messages deleted (1 without objects" in summary


def demo(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3lb", "demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_the_demo_creates_a_missing_output_directory(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "dir" / "x.ndjson"
    result = demo("-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 53


def test_an_output_directory_that_cannot_be_created_is_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    (tmp_path / "blocker").write_text("a file where the directory would go\n")
    result = demo("-o", "blocker/dir/x.ndjson", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("s3lb demo: -o: cannot write blocker/dir/x.ndjson: Not a directory\n")


def test_without_moto_the_hint_says_how_to_install_from_this_repository(tmp_path: Path) -> None:
    """There is no s3lb package in the public index: ``pip install 's3lb[demo]'`` fails."""
    fake = tmp_path / "shadow" / "moto"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no moto here')\n")
    path = os.pathsep.join(filter(None, [str(tmp_path / "shadow"), os.environ.get("PYTHONPATH")]))
    result = demo(cwd=tmp_path, env={"PYTHONPATH": path})
    assert result.returncode == 2
    assert result.stdout == ""
    assert "pip install -e '.[demo]'" in result.stderr
    assert "pip install 's3lb[demo]'" not in result.stderr
