"""The CloudTrail Records splitter: any chunking, tricky strings, bounded memory."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from s3lb.formats import ParseError, get_format
from s3lb.formats.cloudtrail import RecordsSplitter
from s3lb.pipeline.framing import Decompressor, SplitterCutter
from tests.paths import SAMPLES as SAMPLES_DIR

SAMPLE = (SAMPLES_DIR / "cloudtrail.json").read_bytes()


def split(chunks: list[bytes]) -> tuple[list[bytes], str | None]:
    splitter = RecordsSplitter()
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(splitter.feed(chunk))
    out.extend(splitter.close())
    return out, splitter.skip_reason


def test_whole_file_gives_each_record_as_written() -> None:
    """Each raw record is the exact JSON text of one element of Records."""
    records, reason = split([SAMPLE])
    assert [json.loads(r) for r in records] == json.loads(SAMPLE)["Records"]
    assert reason is None


def test_one_byte_at_a_time_gives_identical_records() -> None:
    """Chunk boundaries anywhere (inside strings, escapes, keys) change nothing."""
    whole, _ = split([SAMPLE])
    assert split([SAMPLE[i : i + 1] for i in range(len(SAMPLE))])[0] == whole


@pytest.mark.parametrize("seed", range(25))
def test_random_chunk_sizes_give_identical_records(seed: int) -> None:
    """Random chunkings of the same bytes give the same records."""
    rnd = random.Random(seed)
    chunks, i = [], 0
    while i < len(SAMPLE):
        size = rnd.choice([1, 2, 3, 7, 64, 500, 4096])
        chunks.append(SAMPLE[i : i + size])
        i += size
    assert split(chunks)[0] == split([SAMPLE])[0]


TRICKY = (
    b'{"before": "a\\"]}[{\\\\", "n": [1, {"Records": [9]}],'
    b' "Records" : [ {"a":"\\\\"}, {"b":"]}\\"{["}, {"c": {"d": ["}"]}} ],'
    b' "after": {"Records": [8]}}'
)


@pytest.mark.parametrize("step", [1, 2, 5, 1000])
def test_escaped_quotes_and_brackets_in_strings(step: int) -> None:
    """Quotes, backslashes and brackets inside strings do not end a record; only the
    top-level Records counts."""
    chunks = [TRICKY[i : i + step] for i in range(0, len(TRICKY), step)]
    records, _ = split(chunks)
    assert records == [b'{"a":"\\\\"}', b'{"b":"]}\\"{["}', b'{"c": {"d": ["}"]}}']


def test_empty_records_and_pretty_printed_files() -> None:
    """{"Records":[]} gives nothing; whitespace and newlines anywhere are fine."""
    assert split([b'{"Records":[]}']) == ([], None)
    pretty = json.dumps(json.loads(SAMPLE), indent=2).encode()
    assert [json.loads(r) for r in split([pretty])[0]] == json.loads(SAMPLE)["Records"]


def test_digest_file_yields_nothing_and_says_so() -> None:
    """A digest (no Records, digestStartTime/logFiles) is recognised as skippable."""
    digest = (SAMPLES_DIR / "cloudtrail_digest.json").read_bytes()
    assert split([digest]) == ([], "cloudtrail-digest")
    assert split([b'{"other": 1}']) == ([], "cloudtrail-no-records")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"Records":[{"a":1}', "truncated"),
        (b'{"Records":[{"a":"1', "truncated (inside a record)"),
        (b"[1]", "not a JSON object"),
        (b'{"Records":[{"a":1}]} x', "unexpected data"),
        (b'{"Records":[{"a":1} {"b":2}]}', "expected ',' or ']'"),
    ],
)
def test_broken_documents_raise_parse_error(data: bytes, reason: str) -> None:
    """Records completed before the damage are still yielded; then ParseError."""
    splitter = RecordsSplitter()
    with pytest.raises(ParseError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        list(splitter.feed(data))
        list(splitter.close())


def test_memory_stays_bounded_on_a_big_file() -> None:
    """A ~20 MB file streamed in 64 KiB chunks never buffers more than one record plus
    one chunk."""
    record = json.loads(SAMPLE)["Records"][2]
    one = json.dumps(record, separators=(",", ":")).encode()
    count = 20_000_000 // len(one)
    chunk_size = 64 * 1024
    splitter = RecordsSplitter()
    seen = peak = 0

    def stream():
        yield b'{"Records":['
        for i in range(count):
            yield (b"," if i else b"") + one

    pending = b""
    for piece in stream():
        pending += piece
        while len(pending) >= chunk_size:
            for raw in splitter.feed(pending[:chunk_size]):
                assert raw == one
                seen += 1
            pending = pending[chunk_size:]
            peak = max(peak, splitter.buffered_bytes)
    seen += sum(1 for _ in splitter.feed(pending + b"]}"))
    seen += sum(1 for _ in splitter.close())
    assert seen == count
    assert peak <= len(one) + chunk_size


def test_gzipped_file_through_the_reader_numbers_the_records() -> None:
    """With the reader's Decompressor and SplitterCutter, records come out numbered."""
    body = gzip.compress(SAMPLE)
    fmt = get_format("cloudtrail")
    assert fmt.splitter is not None
    decompressor, cutter = Decompressor(), SplitterCutter(fmt.splitter())
    records = []
    for i in range(0, len(body), 100):
        for text in decompressor.feed(body[i : i + 100]):
            records.extend(cutter.feed(text))
    for text in decompressor.close():
        records.extend(cutter.feed(text))
    records.extend(cutter.close())
    assert [r.position for r in records] == list(range(1, 21))
    parser = fmt.new_parser({})
    assert parser.parse(records[0].raw)["@timestamp"] == "2014-03-06T21:22:54.000Z"
