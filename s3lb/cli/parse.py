"""``s3lb parse``: parse a local log file and print what would be indexed.

One JSON document per event on stdout, in input order: exactly the ``_source`` the
daemon would send for the same object (same format choice, key fields and rules).
Records that cannot be parsed are reported on stderr with their line number; the
exit status is then 1. Plain or gzip input, told apart by the magic bytes.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, BinaryIO

import msgspec

from s3lb.cli.common import Exit
from s3lb.errors import ObjectCorrupt
from s3lb.formats import FORMATS, ParseError
from s3lb.pipeline.framing import DEFAULT_MAX_LINE_BYTES, Decompressor, RawRecord
from s3lb.pipeline.parsing import ObjectCutter, ObjectParser, ParseFailure, UnknownFormat

__all__ = ["add_parser", "parse_stream"]

_CHUNK = 256 * 1024


def add_parser(commands: Any) -> None:
    """Register ``parse`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "parse",
        help="parse a local log file to NDJSON (what would be indexed)",
        description=__doc__,
    )
    parser.add_argument("file", nargs="?", default="-", help="log file, plain or gzip (- = stdin)")
    parser.add_argument(
        "-f", "--format", default="auto", help=f"auto or one of: {', '.join(sorted(FORMATS))}"
    )
    parser.add_argument(
        "--key", default="", help="S3 key: picks the format for auto, feeds --key-regex"
    )
    parser.add_argument(
        "--key-regex", default="", help="key_regex_fields: named groups become fields"
    )
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="log_format_options entry (e.g. timestamp_field=time)",
    )
    parser.add_argument(
        "--max-line-bytes",
        type=_positive,
        default=DEFAULT_MAX_LINE_BYTES,
        metavar="N",
        help="a longer line is reported as oversize instead of parsed",
    )
    parser.set_defaults(func=_run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes, got {text!r}")
    return value


def _run(args: argparse.Namespace) -> int:
    malformed = [item for item in args.option if "=" not in item]
    if malformed:
        print(f"s3lb parse: -o expects NAME=VALUE, got {malformed[0]!r}", file=sys.stderr)
        return Exit.USAGE
    options = dict(item.split("=", 1) for item in args.option)
    try:
        key_regex = re.compile(args.key_regex) if args.key_regex else None
    except re.error as exc:
        print(f"s3lb parse: invalid --key-regex: {exc}", file=sys.stderr)
        return Exit.USAGE
    try:
        stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        print(f"s3lb parse: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return Exit.USAGE
    try:
        parser = ObjectParser(
            args.format,
            args.key or ("" if args.file == "-" else args.file),
            options=options,
            key_regex=key_regex,
            max_line_bytes=args.max_line_bytes,
            last_modified=_file_time(stream),
        )
        if parser.format is not None:
            parser.format.validate_options(options)
    except (UnknownFormat, ValueError) as exc:
        if stream is not sys.stdin.buffer:
            stream.close()
        print(f"s3lb parse: {exc}", file=sys.stderr)
        return Exit.USAGE
    try:
        failures = parse_stream(stream, parser, sys.stdout.buffer, sys.stderr)
    except (UnknownFormat, ObjectCorrupt) as exc:
        print(f"s3lb parse: {exc}", file=sys.stderr)
        return Exit.FAILED
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return Exit.FAILED if failures else Exit.OK


def _file_time(stream: BinaryIO) -> str:
    """A local file's modification time, standing in for an object's LastModified
    (none for a pipe)."""
    if stream is sys.stdin.buffer:
        return ""
    return datetime.fromtimestamp(os.fstat(stream.fileno()).st_mtime, UTC).isoformat()


def parse_stream(source: BinaryIO, parser: ObjectParser, out: BinaryIO, err: Any) -> int:
    """Write one JSON line per event of ``source`` to ``out``; report failures to
    ``err``; return how many records failed.

    Lines are cut, parsed and encoded a piece of text at a time (one write each); the
    head of the text, a format with its own framing and a piece holding an oversize
    line go record by record."""
    encode_lines = msgspec.json.Encoder().encode_lines
    decompressor = Decompressor()
    cutter = ObjectCutter(parser)
    failures = 0

    def report(position: int, failure: ParseFailure) -> None:
        nonlocal failures
        failures += 1
        err.write(f"line {position}: {failure.kind}: {failure.reason}\n")

    def emit(records: Iterable[RawRecord]) -> None:
        docs = []
        for record in records:
            result = parser.parse(record)
            if isinstance(result, ParseFailure):
                report(record.position, result)
            elif result is not None:
                docs.append(result)
        out.write(encode_lines(docs))

    def emit_text(text: bytes) -> None:
        position = cutter.next_position
        lines = cutter.lines(text)
        if lines is None:
            emit(cutter.feed(text))
            return
        docs, failed = parser.parse_lines(lines, position)
        for at, failure in failed:
            report(at, failure)
        out.write(encode_lines(docs))

    while chunk := source.read(_CHUNK):
        for text in decompressor.feed(chunk):
            emit_text(text)
    for text in decompressor.close():
        emit_text(text)
    try:
        emit(cutter.close())
    except ParseError as exc:
        failures += 1
        err.write(f"record {cutter.next_position}: parse_failed: {exc.reason}\n")
    out.flush()
    return failures
