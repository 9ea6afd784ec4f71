"""Where the repository and the sibling ``shared/`` folder (formats, seed samples) live."""

from __future__ import annotations

from pathlib import Path

__all__ = ["REPO", "SHARED"]

#: The repository root (the folder holding ``pyproject.toml``).
REPO = Path(__file__).resolve().parents[1]
#: The ``shared/`` folder next to the repository: format docs, samples, seed samples.
SHARED = REPO.parent / "shared"
