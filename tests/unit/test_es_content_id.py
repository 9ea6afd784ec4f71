"""``document_id: content``: the seed's ``_id``, the SHA-1 of the raw line as read."""

from __future__ import annotations

import json

import pytest

from s3lb.model import content_id
from tests.paths import SEED as SEED_DIR

SAMPLES = SEED_DIR


def _lines_as_read(data: bytes) -> list[bytes]:
    """The file's lines with their line endings, as a line reader returns them."""
    lines = data.split(b"\n")
    with_ends = [line + b"\n" for line in lines[:-1]]
    return with_ends + ([lines[-1]] if lines[-1] else [])


def _seed_events() -> list[tuple[str, int, bool, str]]:
    expected = json.loads((SAMPLES / "expected-full.json").read_text())
    return [
        (
            event["source_file"],
            event["file_line_number"],
            event["raw_line_has_trailing_newline"],
            event["@metadata._id"],
        )
        for group in expected.values()
        for event in group["events"]
    ]


@pytest.mark.parametrize(("source", "line", "has_newline", "expected"), _seed_events())
def test_content_ids_equal_the_seed_ids(
    source: str, line: int, has_newline: bool, expected: str
) -> None:
    raw = _lines_as_read((SAMPLES / source).read_bytes())[line - 1]
    assert raw.endswith(b"\n") == has_newline
    assert content_id(raw) == expected


def test_the_trailing_newline_is_part_of_the_content() -> None:
    # The seed's TestCreateEvent pins the rule on a line without a newline.
    assert content_id(b"2019-03-23T17:04:53 mytest") == "5e5aaa8b1837066efeb3b048f9c7048e2b8261ec"
    assert content_id(b"x\n") != content_id(b"x")
