"""Sans-IO decoding of SQS message bodies that announce S3 objects.

Four body shapes arrive on the queue (see ``shared/formats/s3_event_notifications.md``):

* a direct S3 event notification, ``{"Records": [...]}`` (also what SNS sends with raw
  message delivery on), or the ``s3:TestEvent`` message S3 sends when the notification
  configuration is saved;
* the same, wrapped in an SNS envelope (``Type``/``TopicArn``) whose ``Message`` is the S3
  JSON as a *string*; SNS may also deliver ``SubscriptionConfirmation`` messages;
* an EventBridge event (``source`` ``aws.s3``, ``detail-type`` ``Object Created`` ...).

:func:`decode_notification` turns one body into the created objects, one short reason
per ignored record and one :class:`RecordFailure` per record that cannot be decoded, or
raises :class:`UndecodableMessage` when the body itself cannot be (not JSON, an unknown
shape, or not one record decodes). Records are judged one by one: one bad record does
not cost the good ones. The caller dead-letters the failed records, deletes a decoded
message once its objects are settled (at once if there are none), and leaves an
undecodable one on the queue for the redrive policy to move to the dead-letter queue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec

from s3lb.errors import S3lbError
from s3lb.model import ObjectRef

__all__ = [
    "Notification",
    "RecordFailure",
    "UndecodableMessage",
    "decode_key",
    "decode_notification",
]

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SNS_IGNORED_TYPES = frozenset({"SubscriptionConfirmation", "UnsubscribeConfirmation"})


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """One record of a message that cannot be decoded: its index in ``Records``, why
    (``reason`` names it, e.g. ``Records[1]: malformed %-escape …``) and the record
    itself as JSON, for the dead-letter store."""

    index: int
    reason: str
    record: str


@dataclass(frozen=True, slots=True)
class Notification:
    """What one SQS message announces.

    ``objects`` holds one :class:`~s3lb.model.ObjectRef` per ObjectCreated record, in
    message order, with the key URL-decoded and the ETag unquoted. ``ignored`` holds one
    short reason per record (or whole message) that announces nothing to read, e.g.
    ``"s3:TestEvent"``, ``"ObjectRemoved:Delete"``, ``"SubscriptionConfirmation"`` or
    ``"Object Deleted"``. ``failed`` holds the records that cannot be decoded, in message
    order. A message may have all three, but never only failures.
    """

    objects: tuple[ObjectRef, ...] = ()
    ignored: tuple[str, ...] = ()
    failed: tuple[RecordFailure, ...] = ()


class UndecodableMessage(S3lbError):
    """The body is not a notification we understand; ``reason`` says why.

    Raised when the body (or an SNS ``Message``) is not JSON, has an unknown shape, or
    none of its records can be decoded (each lacks its bucket or key, has a key that is
    not validly URL-encoded…). Such a message is logged and left on the queue, so that
    its redrive policy moves it to the DLQ.

    Deliberately not a ``PermanentError``: those settle (and delete) their message.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def decode_notification(body: str | bytes) -> Notification:
    """Decode one SQS message body.

    Args:
        body: the exact ``Body`` string received from SQS (surrounding whitespace is fine).

    Returns:
        The created objects, the reasons for everything ignored and the records that
        cannot be decoded.

    Raises:
        UndecodableMessage: the body, or every one of its records, cannot be decoded;
            do not delete the message.
    """
    doc = _json(body, "body")
    typ = doc.get("Type")
    if isinstance(typ, str) and "TopicArn" in doc:
        if typ in _SNS_IGNORED_TYPES:
            return Notification(ignored=(typ,))
        if typ != "Notification":
            raise UndecodableMessage(f"unknown SNS message Type {typ!r}")
        message = doc.get("Message")
        if not isinstance(message, str):
            raise UndecodableMessage("SNS envelope has no string Message")
        doc = _json(message, "SNS Message")
    return _decode_event(doc)


def decode_key(raw: str) -> str:
    """Decode an S3 event key: ``+`` is a space, ``%XX`` are UTF-8 bytes.

    Strict, unlike :func:`urllib.parse.unquote_plus`: S3 always encodes ``%`` as ``%25``,
    so a malformed escape or invalid UTF-8 means the key cannot be trusted.

    Raises:
        UndecodableMessage: on a malformed ``%`` escape or invalid UTF-8.
    """
    if "%" not in raw:
        return raw.replace("+", " ")
    bad = _BAD_ESCAPE.search(raw)
    if bad is not None:
        raise UndecodableMessage(f"malformed %-escape at offset {bad.start()} in key {raw!r}")
    try:
        return unquote_to_bytes(raw.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise UndecodableMessage(f"key {raw!r} is not UTF-8 once decoded") from None


def _json(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        doc = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise UndecodableMessage(f"{what} is not JSON: {exc}") from None
    except RecursionError:  # msgspec's answer to "[[[[…" nested beyond its depth limit
        raise UndecodableMessage(f"{what} is JSON nested too deeply to decode") from None
    if not isinstance(doc, dict):
        raise UndecodableMessage(f"{what} is a JSON {type(doc).__name__}, not an object")
    return doc


def _decode_event(doc: dict[str, Any]) -> Notification:
    if doc.get("Event") == "s3:TestEvent":
        return Notification(ignored=("s3:TestEvent",))
    if "Records" in doc:
        return _decode_records(doc["Records"])
    if doc.get("source") == "aws.s3" and "detail" in doc:
        return _decode_eventbridge(doc)
    raise UndecodableMessage(f"unknown message shape (keys: {sorted(doc)[:8]})")


def _decode_records(records: Any) -> Notification:
    if not isinstance(records, list) or not records:
        raise UndecodableMessage("Records is not a non-empty list")
    objects: list[ObjectRef] = []
    ignored: list[str] = []
    failed: list[RecordFailure] = []
    for n, record in enumerate(records):
        try:
            ref = _decode_record(n, record)
        except UndecodableMessage as exc:
            failed.append(RecordFailure(n, exc.reason, msgspec.json.encode(record).decode()))
            continue
        if isinstance(ref, ObjectRef):
            objects.append(ref)
        else:
            ignored.append(ref)
    if failed and not objects and not ignored:
        reasons = "; ".join(f.reason for f in failed[:3])
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        raise UndecodableMessage(
            reasons if len(failed) == 1 else f"no record can be decoded: {reasons}{more}"
        )
    return Notification(tuple(objects), tuple(ignored), tuple(failed))


def _decode_record(n: int, record: Any) -> ObjectRef | str:
    """Record ``n``: the object it creates, or the name of an event to ignore."""
    if not isinstance(record, dict):
        raise UndecodableMessage(f"Records[{n}] is not an object")
    if record.get("eventSource") != "aws:s3":
        raise UndecodableMessage(f"Records[{n}].eventSource is not aws:s3")
    version = record.get("eventVersion")
    if version is not None and (not isinstance(version, str) or version.split(".")[0] != "2"):
        raise UndecodableMessage(f"Records[{n}].eventVersion {version!r} is not 2.x")
    name = record.get("eventName")
    if not isinstance(name, str) or not name:
        raise UndecodableMessage(f"Records[{n}] has no eventName")
    if not name.removeprefix("s3:").startswith("ObjectCreated:"):
        return name
    s3 = _obj(record.get("s3"), f"Records[{n}].s3")
    obj = _obj(s3.get("object"), f"Records[{n}].s3.object")
    return _ref(
        bucket=_obj(s3.get("bucket"), f"Records[{n}].s3.bucket").get("name"),
        key=obj.get("key"),
        etag=obj.get("eTag"),
        version_id=obj.get("versionId"),
        size=obj.get("size"),
        event_time=record.get("eventTime"),
        where=f"Records[{n}]",
    )


def _decode_eventbridge(doc: dict[str, Any]) -> Notification:
    detail_type = doc.get("detail-type")
    if not isinstance(detail_type, str) or not detail_type:
        raise UndecodableMessage("EventBridge event has no detail-type")
    if detail_type != "Object Created":
        return Notification(ignored=(detail_type,))
    detail = _obj(doc.get("detail"), "detail")
    obj = _obj(detail.get("object"), "detail.object")
    ref = _ref(
        bucket=_obj(detail.get("bucket"), "detail.bucket").get("name"),
        key=obj.get("key"),
        etag=obj.get("etag"),
        version_id=obj.get("version-id"),
        size=obj.get("size"),
        event_time=doc.get("time"),
        where="detail",
    )
    return Notification(objects=(ref,))


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UndecodableMessage(f"{where} is missing or not an object")
    return value


def _ref(
    *,
    bucket: Any,
    key: Any,
    etag: Any,
    version_id: Any,
    size: Any,
    event_time: Any,
    where: str,
) -> ObjectRef:
    if not isinstance(bucket, str) or not bucket:
        raise UndecodableMessage(f"{where} has no bucket name")
    if not isinstance(key, str) or not key:
        raise UndecodableMessage(f"{where} has no object key")
    if size is not None and (type(size) is not int or size < 0):
        raise UndecodableMessage(f"{where} object size {size!r} is not a count of bytes")
    for field, value in (("etag", etag), ("version id", version_id), ("time", event_time)):
        if value is not None and not isinstance(value, str):
            raise UndecodableMessage(f"{where} {field} {value!r} is not a string")
    try:
        decoded = decode_key(key)
    except UndecodableMessage as exc:
        raise UndecodableMessage(f"{where}: {exc.reason}") from None
    return ObjectRef(
        bucket=bucket,
        key=decoded,
        etag=(etag or "").strip('"'),
        version_id=version_id or "",
        size=size,
        event_time=event_time or "",
    )
