"""AWS CloudTrail log files (``log_format: cloudtrail``).

A file is one JSON document, ``{"Records":[{...},{...}]}``, usually on a single line of
tens of megabytes. :class:`RecordsSplitter` cuts the decompressed stream into the raw
bytes of each element of ``Records`` as soon as the element is complete, holding at
most one partial record plus one chunk: a 100 MB file is never held in memory.

Each record is kept as CloudTrail wrote it (every key, nested objects included);
``eventTime`` also becomes ``@timestamp``. Digest files (``{"digestStartTime":..,
"logFiles":[..]}``, no ``Records``) yield no record; the splitter then sets
``skip_reason`` so the caller can count the object as skipped. Use ``eventID`` as the
document id to deduplicate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, final

from s3lb.formats._base import Document, LogFormat, ParseError
from s3lb.formats._time import iso8601
from s3lb.formats.json_lines import decode_object
from s3lb.formats.mappings import BOOLEAN, DATE, IP, KEYWORD, LONG_KEYWORD, NOT_INDEXED

__all__ = ["FORMAT", "CloudTrailParser", "RecordsSplitter"]

_WS = b" \t\r\n"
_STRING_STOP = re.compile(rb'["\\]')
_STRUCT_STOP = re.compile(rb'[{}\[\]"]')
_SCALAR_STOP = re.compile(rb"[,\]}\s]")

# Top-level states.
_START, _KEY, _COLON, _VALUE, _SKIP, _AFTER_VALUE = range(6)
_ARRAY, _ELEMENT, _AFTER_ELEMENT, _DONE, _KEYSTR = range(6, 11)


@final
class RecordsSplitter:
    """Yields the raw bytes of each element of the top-level ``Records`` array.

    Works on any chunking (down to one byte at a time) and on strings holding escaped
    quotes or brackets. Other top-level keys are skipped without being kept.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # next byte to scan
        self._state = _START
        self._key_start = -1  # index of the opening quote of the key being read
        self._key = b""
        self._seen_keys: set[bytes] = set()
        self._records_seen = False
        # The value being scanned (a record, or a skipped top-level value).
        self._start = -1
        self._kind = ""  # "c" container, "s" string, "n" scalar
        self._depth = 0
        self._in_string = False
        #: Set by :meth:`close` when the document holds no ``Records`` (a digest file).
        self.skip_reason: str | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes held right now: the partial record, or the unscanned rest of a chunk."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """Consume ``chunk``; yield every record it completes."""
        if chunk:
            self._buf += chunk
            yield from self._run()
            self._compact()

    def close(self) -> Iterator[bytes]:
        """End of stream: raise ParseError if the document is incomplete."""
        yield from self._run()
        rest = bytes(self._buf[self._pos :]).strip(_WS)
        if self._state != _DONE:
            where = "inside a record" if self._state == _ELEMENT else "before its end"
            raise ParseError(f"cloudtrail: the JSON document is truncated ({where})")
        if rest:
            raise ParseError("cloudtrail: unexpected data after the JSON document")
        if not self._records_seen:
            digest = {b"digestStartTime", b"logFiles"} & self._seen_keys
            self.skip_reason = "cloudtrail-digest" if digest else "cloudtrail-no-records"

    def _compact(self) -> None:
        if self._state == _ELEMENT or self._state == _SKIP:
            keep = self._start if self._state == _ELEMENT else self._pos
        elif self._state == _KEYSTR:
            keep = self._key_start
        else:
            keep = self._pos
        # _pos can stand past the end, after a backslash that ended the chunk.
        keep = min(keep, len(self._buf))
        if keep > 0:
            del self._buf[:keep]
            self._pos -= keep
            if self._start >= 0:
                self._start -= keep
            if self._key_start >= 0:
                self._key_start -= keep

    def _skip_ws(self) -> int:
        """Advance past whitespace; return the next byte, or -1 if none yet."""
        buf, pos, n = self._buf, self._pos, len(self._buf)
        while pos < n and buf[pos] in _WS:
            pos += 1
        self._pos = pos
        return buf[pos] if pos < n else -1

    def _begin_value(self, first: int) -> None:
        self._start = self._pos
        self._in_string = False
        if first in b"{[":
            self._kind, self._depth = "c", 1
            self._pos += 1
        elif first == 0x22:  # '"'
            self._kind, self._in_string = "s", True
            self._pos += 1
        else:
            self._kind = "n"

    def _scan_value(self) -> int:
        """Scan the current value; return its end index, or -1 if more data is needed."""
        buf = self._buf
        pos = self._pos
        n = len(buf)
        if self._kind == "n":
            m = _SCALAR_STOP.search(buf, pos)
            if m is None:
                self._pos = n
                return -1
            self._pos = m.start()
            return m.start()
        while pos < n:
            if self._in_string:
                m = _STRING_STOP.search(buf, pos)
                if m is None:
                    pos = n
                    break
                if buf[m.start()] == 0x5C:  # backslash: skip the escaped byte too
                    pos = m.start() + 2
                    continue
                pos = m.end()
                self._in_string = False
                if self._kind == "s":
                    self._pos = pos
                    return pos
                continue
            m = _STRUCT_STOP.search(buf, pos)
            if m is None:
                pos = n
                break
            c = buf[m.start()]
            pos = m.end()
            if c == 0x22:
                self._in_string = True
            elif c == 0x7B or c == 0x5B:  # { [
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    self._pos = pos
                    return pos
        self._pos = pos
        return -1

    def _run(self) -> Iterator[bytes]:
        while True:
            state = self._state
            if state == _ELEMENT:
                end = self._scan_value()
                if end < 0:
                    return
                yield bytes(self._buf[self._start : end])
                self._start = -1
                self._state = _AFTER_ELEMENT
                continue
            if state == _SKIP:
                end = self._scan_value()
                if end < 0:
                    return
                self._start = -1
                self._state = _AFTER_VALUE
                continue
            if state == _KEYSTR:
                end = self._scan_value()
                if end < 0:
                    return
                self._key = bytes(self._buf[self._key_start + 1 : end - 1])
                self._seen_keys.add(self._key)
                self._key_start = -1
                self._state = _COLON
                continue
            c = self._skip_ws()
            if c < 0:
                return
            if state == _START:
                if c != 0x7B:
                    raise ParseError("cloudtrail: the file is not a JSON object")
                self._pos += 1
                self._state = _KEY
            elif state == _KEY:
                if c == 0x7D:  # empty object
                    self._pos += 1
                    self._state = _DONE
                    continue
                if c != 0x22:
                    raise ParseError("cloudtrail: expected a key in the top-level object")
                self._key_start = self._pos
                self._pos += 1
                self._kind, self._in_string = "s", True
                self._state = _KEYSTR
            elif state == _COLON:
                if c != 0x3A:
                    raise ParseError("cloudtrail: expected ':' after a top-level key")
                self._pos += 1
                self._state = _VALUE
            elif state == _VALUE:
                if self._key == b"Records" and c == 0x5B:
                    self._records_seen = True
                    self._pos += 1
                    self._state = _ARRAY
                else:
                    self._begin_value(c)
                    self._state = _SKIP
            elif state == _AFTER_VALUE:
                self._pos += 1
                if c == 0x2C:
                    self._state = _KEY
                elif c == 0x7D:
                    self._state = _DONE
                else:
                    raise ParseError("cloudtrail: expected ',' or '}' in the top-level object")
            elif state == _ARRAY:
                if c == 0x5D:
                    self._pos += 1
                    self._state = _AFTER_VALUE
                else:
                    self._begin_value(c)
                    self._state = _ELEMENT
            elif state == _AFTER_ELEMENT:
                self._pos += 1
                if c == 0x2C:
                    self._state = _ARRAY
                elif c == 0x5D:
                    self._state = _AFTER_VALUE
                else:
                    raise ParseError("cloudtrail: expected ',' or ']' in Records")
            else:  # _DONE: leave trailing bytes for close() to judge
                return


@final
class CloudTrailParser:
    """Parses one CloudTrail record (an element of ``Records``)."""

    __slots__ = ()

    def parse(self, raw: bytes) -> Document | None:
        """Return the record as a document with ``@timestamp`` from ``eventTime``."""
        doc = decode_object(raw)
        if doc is None:
            return None
        value = doc.get("eventTime")
        if not isinstance(value, str):
            raise ParseError("cloudtrail: the record has no eventTime string")
        doc["@timestamp"] = iso8601(value)
        return doc


def _new_parser(options: Mapping[str, Any]) -> CloudTrailParser:
    return CloudTrailParser()


#: Index mappings of the fields this format writes (dotted paths for nested objects).
MAPPINGS: dict[str, dict[str, Any]] = {
    "eventVersion": KEYWORD,
    "eventTime": DATE,
    "eventSource": KEYWORD,
    "eventName": KEYWORD,
    "eventType": KEYWORD,
    "eventCategory": KEYWORD,
    "eventID": KEYWORD,
    "requestID": KEYWORD,
    "sharedEventID": KEYWORD,
    "awsRegion": KEYWORD,
    "sourceIPAddress": IP,
    "userAgent": LONG_KEYWORD,
    "errorCode": KEYWORD,
    "errorMessage": LONG_KEYWORD,
    "readOnly": BOOLEAN,
    "managementEvent": BOOLEAN,
    "recipientAccountId": KEYWORD,
    "apiVersion": KEYWORD,
    "vpcEndpointId": KEYWORD,
    "vpcEndpointAccountId": KEYWORD,
    "sessionCredentialFromConsole": KEYWORD,
    "userIdentity.type": KEYWORD,
    "userIdentity.principalId": KEYWORD,
    "userIdentity.arn": KEYWORD,
    "userIdentity.accountId": KEYWORD,
    "userIdentity.accessKeyId": KEYWORD,
    "userIdentity.userName": KEYWORD,
    "userIdentity.invokedBy": KEYWORD,
    "userIdentity.identityProvider": KEYWORD,
    "userIdentity.sessionContext.attributes.creationDate": DATE,
    "userIdentity.sessionContext.attributes.mfaAuthenticated": KEYWORD,
    "userIdentity.sessionContext.sessionIssuer.type": KEYWORD,
    "userIdentity.sessionContext.sessionIssuer.principalId": KEYWORD,
    "userIdentity.sessionContext.sessionIssuer.arn": KEYWORD,
    "userIdentity.sessionContext.sessionIssuer.accountId": KEYWORD,
    "userIdentity.sessionContext.sessionIssuer.userName": KEYWORD,
    "tlsDetails.tlsVersion": KEYWORD,
    "tlsDetails.cipherSuite": KEYWORD,
    "tlsDetails.clientProvidedHostHeader": KEYWORD,
    "resources.ARN": KEYWORD,
    "resources.accountId": KEYWORD,
    "resources.type": KEYWORD,
    # Their schema varies per API: the same name holds strings here, objects there.
    "requestParameters": NOT_INDEXED,
    "responseElements": NOT_INDEXED,
    "additionalEventData": NOT_INDEXED,
    "serviceEventDetails": NOT_INDEXED,
    "eventContext": NOT_INDEXED,
    "insightDetails": NOT_INDEXED,
}


FORMAT = LogFormat(
    name="cloudtrail",
    fields=MAPPINGS,
    new_parser=_new_parser,
    splitter=RecordsSplitter,
    description='AWS CloudTrail log files ({"Records": [...]}, streamed)',
)
