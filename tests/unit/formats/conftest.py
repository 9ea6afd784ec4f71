"""Fixtures for the format tests: where the shared specs and samples live.

The repository is checked out next to a ``shared/`` folder (``<root>/main`` and
``<root>/shared``; in CI a fresh clone with a copy of ``shared/`` beside it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from s3lb.formats import LogFormat, get_format

__all__ = ["SHARED", "parse_lines", "read_lines"]

#: The ``shared/`` folder beside the repository (tests/unit/formats → repo → ..).
SHARED = (Path(__file__).resolve().parents[3] / ".." / "shared").resolve()


@pytest.fixture
def shared_dir() -> Path:
    """The shared specs folder (formats/, seed-samples/)."""
    if not SHARED.is_dir():
        pytest.fail(f"the shared/ folder is missing: expected it at {SHARED}")
    return SHARED


def read_lines(path: Path) -> list[bytes]:
    """The records of a line-framed sample, cut as the reader cuts them (no \\n, \\r)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # a final newline ends the last line; it starts no new one
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def parse_lines(fmt: str | LogFormat, lines: list[bytes], options: dict | None = None) -> list:
    """Parse ``lines`` with one parser, as for one object; ParseErrors are returned."""
    log_format = get_format(fmt) if isinstance(fmt, str) else fmt
    parser = log_format.new_parser(options or {})
    out: list = []
    for line in lines:
        try:
            out.append(parser.parse(line))
        except Exception as exc:  # the tests look at what came out
            out.append(exc)
    return out
