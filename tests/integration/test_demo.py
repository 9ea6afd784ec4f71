"""The README's first command: ``s3lb demo`` ships the bundled samples end to end."""

from __future__ import annotations

import json
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
