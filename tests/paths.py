"""Where the repository and its test data live: everything a test reads is inside the repository."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA", "REPO", "SAMPLES", "SEED"]

#: The repository root (the folder holding ``pyproject.toml``).
REPO = Path(__file__).resolve().parents[1]
#: The test data (provenance in ``tests/data/README.md``).
DATA = REPO / "tests" / "data"
#: One sample file per AWS log format.
SAMPLES = DATA / "formats"
#: s3logsbeat's own test samples, expectations and example configs.
SEED = DATA / "seed"
