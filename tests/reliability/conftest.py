"""Fixtures of the reliability suite: the component rig (fakes on the autojump clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.harness import Rig


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    """The real pipeline wired to fakes (SQS, S3, the cluster, the checkpoint store)."""
    return Rig(tmp_path, monkeypatch)
