"""Bytes of an object → positioned raw records. Pure and synchronous.

The S3 driver (:mod:`s3lb.aws.s3`) feeds the body chunk by chunk; nothing here holds
more than one chunk of compressed input, one bounded piece of decompressed output and
one partial record.

- :class:`Decompressor` detects gzip by its magic bytes (``1f 8b``), never by the key
  suffix; anything else passes through as plain text. Concatenated gzip members (as
  Firehose writes them) are read one after the other. A corrupt stream raises
  :class:`~s3lb.errors.ObjectCorrupt` at once, a truncated one at :meth:`close`.
- :class:`LineCutter` splits text into lines across chunk boundaries, drops the
  ``\\r`` of CRLF endings, yields a last line that has no newline, and turns a line
  longer than ``max_line_bytes`` into an ``oversize`` record without buffering it;
  :meth:`LineCutter.lines` cuts a whole piece of text into plain lines at once.
- :class:`SplitterCutter` numbers the records of a format with its own framing
  (CloudTrail's ``Records`` array).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from s3lb.errors import ObjectCorrupt
from s3lb.formats import RecordSplitter

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "Decompressor",
    "LineCutter",
    "RawRecord",
    "SplitterCutter",
]

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
_PIECE = 1024 * 1024  # most decompressed bytes produced per step


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record: its 1-based ``position``, the byte ``offset`` of its start and
    ``end``, the offset just past it (line ending included).

    Offsets count bytes of the decompressed stream. ``oversize`` records carry only
    the first bytes of a line that exceeded the limit.
    """

    position: int
    offset: int
    raw: bytes
    oversize: bool = False
    end: int = 0
    #: The line ending as read (``\n``, ``\r\n``, or empty for a last line without one).
    ending: bytes = b""


class Decompressor:
    """Turns an object's body into its text bytes, gunzipping when the magic says so."""

    def __init__(self) -> None:
        self._head = b""
        self._gzip: bool | None = None
        self._inflater: zlib._Decompress | None = None
        self._in_member = False

    @property
    def compressed(self) -> bool:
        """True once the stream is known to be gzip."""
        return bool(self._gzip)

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """Yield the decompressed bytes of ``chunk`` in pieces of bounded size."""
        if self._gzip is None:
            self._head += chunk
            if len(self._head) < len(GZIP_MAGIC):
                return
            chunk, self._head = self._head, b""
            self._gzip = chunk.startswith(GZIP_MAGIC)
        if not self._gzip:
            if chunk:
                yield chunk
            return
        yield from self._inflate(chunk)

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._inflater is None:
                self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._in_member = True
            try:
                out = self._inflater.decompress(data, _PIECE)
            except zlib.error as exc:
                raise ObjectCorrupt(f"corrupt gzip stream: {exc}") from None
            if out:
                yield out
            if self._inflater.eof:
                data = self._inflater.unused_data
                self._inflater = None
                self._in_member = False
                if data and not data.startswith(GZIP_MAGIC[:1]):
                    # Trailing zero padding after the last member is harmless.
                    if data.strip(b"\x00"):
                        raise ObjectCorrupt("garbage after the end of a gzip member")
                    return
            else:
                data = self._inflater.unconsumed_tail

    def close(self) -> Iterator[bytes]:
        """End of the body: yield what is left; raise ObjectCorrupt if gzip was cut."""
        if self._gzip is None and self._head:
            self._gzip = False
            head, self._head = self._head, b""
            yield head
        if self._gzip and self._in_member:
            raise ObjectCorrupt("truncated gzip stream (the object ends inside a member)")


class _Numbering:
    """Numbers records and tracks where the next one starts."""

    def __init__(self, first_position: int, first_offset: int) -> None:
        self._position = first_position
        self._offset = first_offset  # where the next record starts

    @property
    def next_position(self) -> int:
        """Position of the first record not yet yielded."""
        return self._position

    @property
    def next_offset(self) -> int:
        """Byte offset of the first record not yet yielded."""
        return self._offset

    def _number(
        self, raw: bytes, consumed: int, oversize: bool = False, ending: bytes = b""
    ) -> RawRecord:
        end = self._offset + consumed
        record = RawRecord(self._position, self._offset, raw, oversize, end, ending)
        self._position += 1
        self._offset = end
        return record


class LineCutter(_Numbering):
    """Cuts text into lines, numbered from ``first_position``."""

    def __init__(
        self,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        first_position: int = 1,
        first_offset: int = 0,
    ) -> None:
        super().__init__(first_position, first_offset)
        self._max = max_line_bytes
        self._partial = bytearray()
        # Inside an oversize line: its first bytes, and how many bytes it has so far.
        self._preview: bytes | None = None
        self._skipped = 0

    def feed(self, text: bytes) -> Iterator[RawRecord]:
        """Yield every line completed by ``text``."""
        start = 0
        while start < len(text):
            nl = text.find(b"\n", start)
            if nl < 0:
                self._append(text[start:])
                return
            piece = text[start:nl]
            start = nl + 1
            if self._preview is not None:
                preview, self._preview = self._preview, None
                yield self._emit(preview, self._skipped + len(piece) + 1, oversize=True)
                continue
            if self._partial:
                self._partial += piece
                line = bytes(self._partial)
                self._partial.clear()
            else:
                line = piece
            if len(line) > self._max:
                yield self._emit(line[: self._max], len(line) + 1, oversize=True)
            else:
                yield self._emit(line, len(line) + 1)

    def lines(self, text: bytes) -> list[bytes] | None:
        """The lines ``text`` completes, as plain bytes numbered from
        :attr:`next_position` on (cut in C: no record per line), or ``None``, with
        nothing taken, when one is oversize: then :meth:`feed` the same text."""
        if self._preview is not None:
            return None
        partial = self._partial
        pieces = text.split(b"\n")
        if partial:
            pieces[0] = b"".join((partial, pieces[0]))
        rest = pieces.pop()
        if len(rest) > self._max or (pieces and max(map(len, pieces)) > self._max):
            return None
        if b"\r" in text or partial[-1:] == b"\r":
            pieces = [p[:-1] if p[-1:] == b"\r" else p for p in pieces]
        self._offset += len(partial) + len(text) - len(rest)
        self._position += len(pieces)
        self._partial = bytearray(rest)
        return pieces

    def _append(self, piece: bytes) -> None:
        if self._preview is not None:
            self._skipped += len(piece)
            return
        self._partial += piece
        if len(self._partial) > self._max:
            self._preview = bytes(self._partial[: self._max])
            self._skipped = len(self._partial)
            self._partial.clear()

    def _emit(
        self, line: bytes, consumed: int, oversize: bool = False, newline: bool = True
    ) -> RawRecord:
        ending = b"\n" if newline else b""
        if line.endswith(b"\r"):
            line = line[:-1]
            ending = b"\r" + ending
        return self._number(line, consumed, oversize, ending)

    def close(self) -> Iterator[RawRecord]:
        """End of text: yield the last line if it had no newline."""
        if self._preview is not None:
            preview, self._preview = self._preview, None
            yield self._emit(preview, self._skipped, oversize=True, newline=False)
        elif self._partial:
            line = bytes(self._partial)
            self._partial.clear()
            yield self._emit(line, len(line), newline=False)


class SplitterCutter(_Numbering):
    """Numbers the records a format's own :class:`RecordSplitter` cuts."""

    def __init__(self, splitter: RecordSplitter, first_position: int = 1) -> None:
        super().__init__(first_position, 0)
        self._splitter = splitter

    def feed(self, text: bytes) -> Iterator[RawRecord]:
        """Yield every record completed by ``text``."""
        for raw in self._splitter.feed(text):
            yield self._number(raw, len(raw))

    def close(self) -> Iterator[RawRecord]:
        """End of text: yield the remaining records (ParseError if incomplete)."""
        for raw in self._splitter.close():
            yield self._number(raw, len(raw))
