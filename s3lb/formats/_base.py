"""The contract every log format implements. Pure and synchronous: no I/O, no trio.

A format turns one *record* (the raw bytes of a line, without its line ending, or one
element of a JSON array for CloudTrail) into the ``_source`` document to index.

- :class:`LogFormat` describes a format: its name, how records are framed in the
  object, and a factory for a per-object :class:`RecordParser`.
- A :class:`RecordParser` is created once per object, so it may keep header state
  (CloudFront ``#Fields``, VPC flow log header line).
- ``parse(raw)`` returns the document (a dict with ``@timestamp`` as
  ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, cut to milliseconds), or ``None`` for a record
  that carries no event (a header, a comment, a blank line), or raises
  :class:`ParseError` with a human reason.
- A format that needs to know its object (VPC flow records without times take the
  key's time stamp or LastModified) provides ``object_parser``, which also receives
  an :class:`ObjectInfo`; callers use :meth:`LogFormat.open_parser`.
- ``fields`` maps each field the format writes to its index mapping (types from
  ``s3lb.formats.mappings``); the index templates are built from it.
- Formats whose records are not lines provide ``splitter``: a factory for a
  :class:`RecordSplitter` that cuts the decompressed byte stream into records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "Document",
    "LogFormat",
    "ObjectInfo",
    "ParseError",
    "RecordParser",
    "RecordSplitter",
]

Document = dict[str, Any]


class ParseError(Exception):
    """One record could not be parsed; ``reason`` says why, for the dead-letter store."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class RecordParser(Protocol):
    """Parses the records of one object, in order."""

    def parse(self, raw: bytes) -> Document | None:
        """Return the document for ``raw``, ``None`` to skip it, or raise ParseError."""
        ...


class RecordSplitter(Protocol):
    """Cuts a decompressed byte stream into records (for non-line formats)."""

    def feed(self, chunk: bytes) -> Iterable[bytes]:
        """Consume ``chunk``; yield every record completed by it."""
        ...

    def close(self) -> Iterable[bytes]:
        """End of stream: yield what remains, or raise ParseError if it is incomplete."""
        ...


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a parser may know of its object: the (decoded) key, and its
    LastModified (or the notification's event time) as ISO 8601, ``""`` if unknown."""

    key: str = ""
    last_modified: str = ""


@dataclass(frozen=True, slots=True)
class LogFormat:
    """A named log format.

    ``new_parser(options)`` builds the per-object parser; ``options`` is the input's
    ``log_format_options`` mapping (empty for most formats). ``splitter`` is ``None``
    for line-framed formats. ``stateful`` is true when the parser learns from earlier
    records of the same object (a header line naming the columns: CloudFront,
    VPC Flow Logs): a caller that skips records on resume must still pass them to
    ``parse`` (and drop the results), or later records are mapped by the default
    layout. ``alias_of`` names the format this one is another name of (``clb`` → ``elb``).
    """

    name: str
    new_parser: Callable[[Mapping[str, Any]], RecordParser]
    splitter: Callable[[], RecordSplitter] | None = None
    description: str = ""
    validate_options: Callable[[Mapping[str, Any]], object] = field(default=lambda _o: None)
    stateful: bool = False
    fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    object_parser: Callable[[Mapping[str, Any], ObjectInfo], RecordParser] | None = None
    alias_of: str | None = None

    def open_parser(
        self, options: Mapping[str, Any], obj: ObjectInfo | None = None
    ) -> RecordParser:
        """The parser for one object; ``obj`` reaches formats that use it."""
        if self.object_parser is not None:
            return self.object_parser(options, obj or ObjectInfo())
        return self.new_parser(options)
