"""Helpers for the format tests: read a sample as the reader cuts it, parse lines with a parser."""

from __future__ import annotations

from pathlib import Path

from s3lb.formats import LogFormat, get_format

__all__ = ["parse_lines", "read_lines"]


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
