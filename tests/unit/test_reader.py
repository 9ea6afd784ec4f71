"""The sans-IO reader: gzip by magic bytes, line cutting across chunks, bounds."""

from __future__ import annotations

import gzip
import random
import zlib

import pytest

from s3lb.errors import ObjectCorrupt
from s3lb.pipeline.framing import Decompressor, LineCutter, RawRecord


def read_all(data: bytes, chunk: int, max_line_bytes: int = 1 << 20) -> list[RawRecord]:
    decompressor, cutter = Decompressor(), LineCutter(max_line_bytes)
    records: list[RawRecord] = []
    for i in range(0, len(data), chunk):
        for text in decompressor.feed(data[i : i + chunk]):
            records += cutter.feed(text)
    for text in decompressor.close():
        records += cutter.feed(text)
    records += cutter.close()
    return records


TEXT = b"first line\r\nsecond\n\nfourth, no newline at the end"


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 10_000])
@pytest.mark.parametrize("compress", [False, True])
def test_lines_are_the_same_whatever_the_chunking_and_compression(
    chunk: int, compress: bool
) -> None:
    data = gzip.compress(TEXT) if compress else TEXT
    records = read_all(data, chunk)
    assert [r.raw for r in records] == [
        b"first line",
        b"second",
        b"",
        b"fourth, no newline at the end",
    ]
    assert [r.position for r in records] == [1, 2, 3, 4]
    # Offsets point at each line's first byte in the decompressed text.
    assert [r.offset for r in records] == [0, 12, 19, 20]


def test_gzip_is_detected_by_magic_bytes_not_by_name() -> None:
    decompressor = Decompressor()
    out = b"".join(decompressor.feed(gzip.compress(b"a\n")))
    assert decompressor.compressed and out == b"a\n"
    plain = Decompressor()
    assert b"".join(plain.feed(b"\x1fplain")) == b"\x1fplain" and not plain.compressed


def test_concatenated_gzip_members_are_all_read() -> None:
    data = gzip.compress(b"one\n") + gzip.compress(b"two\n") + gzip.compress(b"three\n")
    assert [r.raw for r in read_all(data, 5)] == [b"one", b"two", b"three"]


def test_corrupt_gzip_raises_object_corrupt() -> None:
    data = bytearray(gzip.compress(b"x" * 5000 + b"\n" + bytes(random.Random(1).randbytes(5000))))
    data[20:40] = b"\xff" * 20
    with pytest.raises(ObjectCorrupt):
        read_all(bytes(data), 100)


def test_truncated_gzip_raises_at_the_end_after_the_complete_lines() -> None:
    body = b"".join(b"line %d\n" % i for i in range(2000))
    data = gzip.compress(body)[:-30]
    decompressor, cutter = Decompressor(), LineCutter()
    seen: list[RawRecord] = []
    with pytest.raises(ObjectCorrupt, match="truncated"):
        for text in decompressor.feed(data):
            seen += cutter.feed(text)
        list(decompressor.close())
    assert seen and seen[0].raw == b"line 0"


def test_decompressed_output_comes_in_bounded_pieces() -> None:
    bomb = zlib.compress(b"\n" * (8 << 20))  # zlib header: not gzip, passes through
    gz = gzip.compress(b"a" * (8 << 20))
    assert b"".join(Decompressor().feed(bomb)) == bomb
    pieces = list(Decompressor().feed(gz))
    assert len(pieces) >= 8 and max(len(p) for p in pieces) <= 1 << 20


def test_an_oversize_line_becomes_one_oversize_record_and_the_next_lines_survive() -> None:
    data = b"ok\n" + b"x" * 100 + b"\nafter\n" + b"y" * 50
    for chunk in (1, 7, 1000):
        records = read_all(data, chunk, max_line_bytes=10)
        assert [(r.position, r.oversize) for r in records] == [
            (1, False),
            (2, True),
            (3, False),
            (4, True),
        ]
        assert records[1].raw == b"x" * 10
        assert records[2].raw == b"after" and records[2].offset == 104


@pytest.mark.parametrize("chunk", [1, 2, 5, 13, 64, 10_000])
def test_whole_pieces_cut_into_plain_lines_give_the_records_lines(chunk: int) -> None:
    """``lines()`` (what ``s3lb parse`` uses) and ``feed()`` agree whatever the chunking:
    a piece with an oversize line is left to ``feed()``, CRLF split across pieces too."""
    data = b"ok\r\n" + b"x" * 30 + b"\n\nsecond\r\n" + TEXT + b"\n" + b"y" * 12 + b"\nlast"
    expected = read_all(data, 10_000, max_line_bytes=20)
    cutter = LineCutter(20)
    got: list[tuple[int, bytes, bool]] = []
    for i in range(0, len(data), chunk):
        text, position = data[i : i + chunk], cutter.next_position
        lines = cutter.lines(text)
        if lines is None:
            got += [(r.position, r.raw, r.oversize) for r in cutter.feed(text)]
        else:
            got += [(position + n, line, False) for n, line in enumerate(lines)]
        assert cutter.next_offset == next(
            (r.offset for r in expected if r.position == cutter.next_position), len(data) - 4
        )
    got += [(r.position, r.raw, r.oversize) for r in cutter.close()]
    assert got == [(r.position, r.raw, r.oversize) for r in expected]


def test_a_cutter_can_start_mid_object_for_a_ranged_resume() -> None:
    cutter = LineCutter(first_position=41, first_offset=1000)
    records = list(cutter.feed(b"a\nbb\n")) + list(cutter.close())
    assert [(r.position, r.offset) for r in records] == [(41, 1000), (42, 1002)]
    assert (cutter.next_position, cutter.next_offset) == (43, 1005)


def test_empty_object_yields_nothing() -> None:
    assert read_all(b"", 10) == []
    assert read_all(gzip.compress(b""), 10) == []


def test_line_endings_are_kept_so_content_ids_match_the_seeds() -> None:
    import json

    from s3lb.model import content_id
    from tests.paths import SEED as SEED_DIR

    expected = json.loads((SEED_DIR / "expected-full.json").read_text())
    for name, sample in (("alb", "alb.log"), ("waf_eof", "waf-trailing-newline.log")):
        data = (SEED_DIR / sample).read_bytes()
        records = read_all(data, 100)
        ids = [content_id(r.raw + r.ending) for r in records if r.raw.strip()]
        assert ids == [e["@metadata._id"] for e in expected[name]["events"]]
    crlf = read_all(b"a\r\nb", 1)
    assert [(r.raw, r.ending) for r in crlf] == [(b"a", b"\r\n"), (b"b", b"")]
