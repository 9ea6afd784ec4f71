"""Records of one object → documents: the logic ``s3lb run`` and ``s3lb parse`` share.

:class:`ObjectParser` chooses the format (the input's ``log_format``; for ``auto``, the
key layout, else the first non-blank line), adds the fields of ``key_regex_fields``
and the input's ``fields``, and turns every record into a document, ``None`` (a
header or blank line), or a :class:`ParseFailure` to dead-letter. Pure and synchronous.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from s3lb.formats import (
    Document,
    LogFormat,
    ObjectInfo,
    ParseError,
    RecordParser,
    detect_format,
    get_format,
    sniff_format,
)
from s3lb.pipeline.framing import DEFAULT_MAX_LINE_BYTES, LineCutter, RawRecord, SplitterCutter

__all__ = ["ObjectCutter", "ObjectParser", "ParseFailure", "UnknownFormat"]

log = logging.getLogger("s3lb")


class UnknownFormat(Exception):
    """No format could be chosen for an object (or the name is not a format)."""


class ParseFailure(NamedTuple):
    """Why a record produced no document: ``kind`` is ``parse_failed`` or ``oversize``."""

    kind: str
    reason: str


def _format(name: str) -> LogFormat:
    try:
        return get_format(name)
    except KeyError as exc:
        raise UnknownFormat(str(exc.args[0])) from None


class ObjectParser:
    """Parses the records of one object, in order."""

    def __init__(
        self,
        log_format: str,
        key: str = "",
        *,
        options: Mapping[str, Any] | None = None,
        key_regex: re.Pattern[str] | None = None,
        extra_fields: Mapping[str, Any] | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        last_modified: str = "",
    ) -> None:
        name = (detect_format(key) or "") if log_format == "auto" else log_format
        self.format: LogFormat | None = _format(name) if name else None
        self.key = key
        #: The object's LastModified (or event time), ISO 8601: a time for records
        #: that carry none (VPC flow formats without start/end).
        self.last_modified = last_modified
        self.options = dict(options or {})
        self.max_line_bytes = max_line_bytes
        self._parser: RecordParser | None = None
        self._bug_logged = False
        self.key_matched = True
        self.extra: dict[str, Any] = {}
        if key_regex is not None:
            match = key_regex.search(key)
            self.key_matched = match is not None
            if match:
                self.extra = {k: v for k, v in match.groupdict().items() if v}
        self.extra.update(extra_fields or {})

    @property
    def rangeable(self) -> bool:
        """True if reading may start mid-object: line framing and no header state."""
        fmt = self.format
        return fmt is not None and fmt.splitter is None and not fmt.stateful

    def observe(self, record: RawRecord) -> None:
        """Show a stateful parser a record that was already shipped (a resume skips
        it): its header lines set the layout of the records that follow."""
        if self.format is not None and self.format.stateful:
            self.parse(record)

    def choose_format(self, head: bytes) -> None:
        """Settle ``auto`` from the first bytes of the text when the key did not tell;
        before cutting, since the format decides how records are framed (a CloudTrail
        file is one long JSON document). Raises UnknownFormat."""
        if self.format is not None:
            return
        name = sniff_format(head)
        if name is None:
            raise UnknownFormat(
                "log_format is auto and neither the key nor the first line tells the "
                "format; set log_format"
            )
        self.format = _format(name)

    def new_cutter(
        self, first_position: int = 1, first_offset: int = 0
    ) -> LineCutter | SplitterCutter:
        """A cutter for this object's text, optionally resuming at a line."""
        if self.format is not None and self.format.splitter is not None:
            return SplitterCutter(self.format.splitter())
        return LineCutter(self.max_line_bytes, first_position, first_offset)

    def parse(self, record: RawRecord) -> Document | ParseFailure | None:
        """The document for ``record``, ``None`` to skip it, or why it failed."""
        if record.oversize:
            return ParseFailure("oversize", f"line longer than {self.max_line_bytes} bytes")
        parser = self._parser or self._open(record.raw)
        if parser is None:
            return None
        try:
            doc = parser.parse(record.raw)
        except Exception as exc:
            return self._failure(exc, record.position)
        if doc is not None and self.extra:
            doc.update(self.extra)
        return doc

    def parse_lines(
        self, lines: list[bytes], first_position: int
    ) -> tuple[list[Document], list[tuple[int, ParseFailure]]]:
        """:meth:`parse` for consecutive lines (none oversize) in one loop: their
        documents in order, and each failure with its position."""
        docs: list[Document] = []
        failures: list[tuple[int, ParseFailure]] = []
        if self._parser is None or self.extra:  # the first line, or fields to add
            for i, raw in enumerate(lines, first_position):
                result = self.parse(RawRecord(i, 0, raw))
                if isinstance(result, ParseFailure):
                    failures.append((i, result))
                elif result is not None:
                    docs.append(result)
            return docs, failures
        parse, keep = self._parser.parse, docs.append
        for i, raw in enumerate(lines, first_position):
            try:
                doc = parse(raw)
            except Exception as exc:
                failures.append((i, self._failure(exc, i)))
                continue
            if doc is not None:
                keep(doc)
        return docs, failures

    def _failure(self, exc: Exception, position: int) -> ParseFailure:
        """What a parser's exception means for the record at ``position``."""
        if isinstance(exc, ParseError):
            return ParseFailure("parse_failed", exc.reason)
        # A parser bug: the line is dead-lettered, not lost, and the object goes on.
        if not self._bug_logged:
            self._bug_logged = True
            log.exception("parser error in %s at line %d", self.key, position)
        return ParseFailure("parse_failed", f"parser error: {type(exc).__name__}: {exc}")

    def _open(self, first: bytes) -> RecordParser | None:
        if self.format is None:
            if not first.strip():
                return None
            self.choose_format(first)
        assert self.format is not None
        obj = ObjectInfo(self.key, self.last_modified)
        self._parser = self.format.open_parser(self.options, obj)
        return self._parser


class ObjectCutter:
    """Cuts one object's text into records with the parser's framing, first holding
    back the head of the text until ``auto`` has picked the format."""

    #: Enough to see a first line (or the start of a JSON document).
    HEAD = 4096

    def __init__(
        self, parser: ObjectParser, first_position: int = 1, first_offset: int = 0
    ) -> None:
        self.parser = parser
        self._start = (first_position, first_offset)
        self._head = b""
        self._cutter: LineCutter | SplitterCutter | None = None

    @property
    def next_position(self) -> int:
        """Position of the first record not yet yielded."""
        return self._cutter.next_position if self._cutter else self._start[0]

    @property
    def next_offset(self) -> int:
        """Byte offset just past the last record yielded."""
        return self._cutter.next_offset if self._cutter else self._start[1]

    def feed(self, text: bytes) -> Iterable[RawRecord]:
        """Records completed by ``text``."""
        if self._cutter is None:
            self._head += text
            undecided = self.parser.format is None
            if undecided and len(self._head) < self.HEAD and b"\n" not in self._head.lstrip():
                return ()
            text, self._head = self._head, b""
            self._cutter = self._open(text)
        return self._cutter.feed(text)

    def lines(self, text: bytes) -> list[bytes] | None:
        """The lines ``text`` completes as plain bytes, numbered from
        :attr:`next_position` on, when records are lines and none is oversize; else
        ``None``, with nothing taken: then :meth:`feed` the same text."""
        cutter = self._cutter
        return cutter.lines(text) if isinstance(cutter, LineCutter) else None

    def close(self) -> Iterable[RawRecord]:
        """End of text: the remaining records (ParseError if a document is incomplete)."""
        if self._cutter is None:
            text, self._head = self._head, b""
            self._cutter = self._open(text)
            return [*self._cutter.feed(text), *self._cutter.close()]
        return self._cutter.close()

    def _open(self, head: bytes) -> LineCutter | SplitterCutter:
        if head.strip():
            self.parser.choose_format(head)
        return self.parser.new_cutter(*self._start)
