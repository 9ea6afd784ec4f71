"""Object readers: S3 object → parsed, encoded documents on the sink's channel.

Each reader takes :class:`ObjectTask` s from its channel, streams the object,
decompresses and cuts it into records, parses them with the input's format, and sends
the encoded documents in lists of up to ``SLICE_RECORDS``, parsed in turns with the
other readers (one turn at a time keeps the loop responsive). A record that cannot be
parsed, or is longer than ``max_line_bytes``, goes to the dead-letter store with its
location and never reaches the sink; the object still completes.

A transient S3 failure mid-object is retried (up to ``attempts`` times, with backoff)
from where the reader stopped: a Range GET from the next record's byte offset for a
plain object, a re-read that skips what was already sent for gzip. Retries are pinned
to the first response's ETag, so a changed object is not mixed with the old one.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections.abc import Callable, Iterable, Iterator

import msgspec
import trio

from s3lb.acks import BulkItem, ObjectTracker, Watermark
from s3lb.aws.s3 import BucketMissing, S3Client
from s3lb.checkpoint import CheckpointStore
from s3lb.deadletter import DeadLetter, entry
from s3lb.errors import AccessDenied, ObjectCorrupt, ObjectGone, SourceUnavailable
from s3lb.formats import ParseError, skip_reason
from s3lb.model import ObjectRef, content_id, document_ids
from s3lb.pipeline.framing import Decompressor, RawRecord
from s3lb.pipeline.parsing import ObjectCutter, ObjectParser, ParseFailure, UnknownFormat
from s3lb.retry import Backoff
from s3lb.sinks.elasticsearch.indexes import IndexNamer
from s3lb.sources import ObjectTask
from s3lb.telemetry import Telemetry

__all__ = ["SLICE_RECORDS", "ObjectReader"]


_encoder = msgspec.json.Encoder()
log = logging.getLogger("s3lb")
#: Records parsed in one CPU turn, between two yields to the event loop (~2 ms of
#: ALB). 1,000 kept bulk answers waiting 20 ms a turn; 50 made the overhead of a turn
#: and of smaller bulks show (bench/cores.py 1.65-1.70x against 1.69-1.90x).
SLICE_RECORDS = 100
#: Dead-lettered records logged per object; the rest are counted in the object's line.
_LOGGED_PER_OBJECT = 3
#: Seconds between two error lines about the same missing bucket.
_BUCKET_MISSING_EVERY = 60.0


class ObjectReader:
    """Reads objects and feeds the sink."""

    def __init__(
        self,
        s3: S3Client,
        namer: IndexNamer,
        telemetry: Telemetry,
        dead_letter: DeadLetter,
        max_line_bytes: int,
        attempts: int = 5,
        store: CheckpointStore | None = None,
        content_ids: bool = False,
    ) -> None:
        self.s3 = s3
        self.store = store
        #: ``document_id: content``: ids are the seed's SHA-1 of each raw line.
        self.content_ids = content_ids
        self.namer = namer
        self.telemetry = telemetry
        self.dead_letter = dead_letter
        self.max_line_bytes = max_line_bytes
        self.attempts = attempts
        #: Bucket -> (trio time of its last NoSuchBucket error line, objects since).
        self._missing_buckets: dict[str, tuple[float, int]] = {}
        #: Held by the reader inflating or parsing a slice. The loop is one thread, so
        #: readers taking turns lose nothing, and a bulk answer or a poll waits for one
        #: slice, not for a slice of every reader.
        self.cpu_turn = trio.Lock()

    async def run(
        self,
        receive: trio.MemoryReceiveChannel[ObjectTask],
        send: trio.MemorySendChannel[list[BulkItem]],
    ) -> None:
        """Read every task from ``receive`` until it is closed."""
        async with receive, send:
            async for task in receive:
                await self.read(task, send)

    async def read(self, task: ObjectTask, send: trio.MemorySendChannel[list[BulkItem]]) -> None:
        """Read one object to its end, or record why it could not be."""
        ref, tracker = task.ref, task.tracker
        where = {"bucket": ref.bucket, "key": ref.key}
        reason = skip_reason(ref.key)
        if reason:
            self.telemetry.count("objects_skipped")
            self.telemetry.info("object skipped", reason=reason, **where)
            tracker.finish_reading()
            return
        self.telemetry.count("objects_started")
        try:
            run = _ObjectRun(self, task)
            if await run.resume_from_checkpoint():
                self.telemetry.count("objects_already_done")
                self.telemetry.info("object already done; nothing re-sent", **where)
                tracker.finish_reading()
                return
            await run.run(send)
        except ObjectGone as exc:
            self.telemetry.count("objects_gone")
            self.telemetry.warning("object gone; nothing to ship", reason=str(exc), **where)
            tracker.fail(str(exc), gone=True)
        except UnknownFormat as exc:
            await self._set_aside(tracker, "unknown_format", str(exc))
        except BucketMissing as exc:
            self._bucket_missing(tracker, exc)
        except (ObjectCorrupt, AccessDenied, SourceUnavailable) as exc:
            self._failed(tracker, str(exc))
        except trio.BrokenResourceError:
            # The sink is gone (its output closed, e.g. a reader of stdout went away):
            # the daemon is stopping. The object stays unfinished, so its message is
            # released, not deleted.
            self.telemetry.info("sink closed; object left for redelivery", **where)
        except Exception as exc:
            # A bug must cost one object (its message is redelivered), not the daemon.
            log.exception("unexpected error while reading %s", ref)
            self._failed(tracker, f"internal error: {type(exc).__name__}: {exc}")
        else:
            tracker.finish_reading()

    async def _set_aside(self, tracker: ObjectTracker, kind: str, reason: str) -> None:
        """Keep the whole object in the dead-letter store (one entry naming bucket, key,
        version and reason) and let its message go: redelivery cannot help, and a later
        ``s3lb import`` with the right ``log_format`` retries it (the store marks it
        failed). If the entry cannot be written, the object fails instead."""
        try:
            await self.dead_letter.write([entry(kind, reason, tracker.ref, 0)])
        except OSError as exc:
            self._failed(tracker, f"{reason}; dead-lettering the object failed: {exc}")
            return
        self.telemetry.count("objects_set_aside")
        self.telemetry.warning(
            "object dead-lettered whole; its message is deleted",
            kind=kind,
            reason=reason,
            bucket=tracker.ref.bucket,
            key=tracker.ref.key,
        )
        tracker.put_aside(reason)

    def _bucket_missing(self, tracker: ObjectTracker, exc: BucketMissing) -> None:
        """The bucket is unknown at this endpoint: the object fails (its message is
        kept, not deleted as for a gone object), counted; one error line per bucket a
        minute at most, however many objects name it."""
        self.telemetry.count("objects_bucket_missing")
        self.telemetry.count("objects_failed")
        now = trio.current_time()
        last, hidden = self._missing_buckets.get(exc.bucket, (-math.inf, 0))
        if now - last < _BUCKET_MISSING_EVERY:
            self._missing_buckets[exc.bucket] = (last, hidden + 1)
        else:
            self._missing_buckets[exc.bucket] = (now, 0)
            self.telemetry.error(
                "bucket does not exist at this S3 endpoint; messages naming it are kept for "
                "the redrive policy (check AWS_ENDPOINT_URL or the profile's endpoint_url, "
                "and the region)",
                bucket=exc.bucket,
                endpoint=exc.endpoint,
                key=tracker.ref.key,
                **({"objects_since_last_report": hidden} if hidden else {}),
            )
        tracker.fail(str(exc))

    def _failed(self, tracker: ObjectTracker, reason: str) -> None:
        self.telemetry.count("objects_failed")
        self.telemetry.error(
            "object failed; its message is kept for redelivery",
            reason=reason,
            records_sent=tracker.sent,
            bucket=tracker.ref.bucket,
            key=tracker.ref.key,
        )
        tracker.fail(reason)


class _ObjectRun:
    """The state of reading one object, across retries."""

    def __init__(self, reader: ObjectReader, task: ObjectTask) -> None:
        self.reader = reader
        self.task = task
        self.ref = task.ref
        spec = task.input
        self.parser = ObjectParser(
            spec.log_format,
            task.ref.key,
            options=spec.options,
            key_regex=spec.key_regex,
            extra_fields=spec.extra_fields,
            max_line_bytes=reader.max_line_bytes,
            last_modified=task.ref.event_time,
        )
        if not self.parser.key_matched:
            reader.telemetry.count("key_regex_mismatch")
            reader.telemetry.warning(
                "key does not match key_regex_fields; events shipped without those fields",
                bucket=task.ref.bucket,
                key=task.ref.key,
            )
        self.next_position = 1
        self.next_offset = 0
        self._plain: bool | None = None  # known once the first bytes arrived
        #: Positions a previous run had acknowledged beyond its watermark.
        self.acked_beyond: list[range] = []
        self._ids: tuple[ObjectRef, Callable[[int], str]] | None = None

    async def resume_from_checkpoint(self) -> bool:
        """Start from the object's checkpoint; True if the object is already done."""
        tracker, ref, store = self.task.tracker, self.ref, self.reader.store
        state = None
        if store is not None and ref.identity:
            state = await store.get(ref.bucket, ref.key, ref.identity)
        if state is None:
            tracker.watermark = Watermark()
            return False
        if state.status == "done":
            return True
        tracker.watermark = Watermark(state.acked, state.offset)
        # The stored counts cover earlier attempts: this one adds to them.
        tracker.counts.update(msgspec.structs.asdict(state.records))
        self.acked_beyond = [range(first, last + 1) for first, last in state.beyond]
        if state.acked or state.beyond:
            self.next_position = state.acked + 1
            if state.offset > 0:  # stored only for plain objects: resume with a Range GET
                self.next_offset = state.offset
                self._plain = True
            self.reader.telemetry.count("objects_resumed")
            self.reader.telemetry.info(
                "resuming object from its checkpoint",
                bucket=ref.bucket,
                key=ref.key,
                acked=state.acked,
                ranged=self.next_offset > 0,
            )
        return False

    async def run(self, send: trio.MemorySendChannel[list[BulkItem]]) -> None:
        attempt = 0
        backoff = Backoff(1.0, 30.0)
        while True:
            try:
                await self._read_once(send)
                return
            except BucketMissing:
                raise  # retrying at once cannot bring a bucket back
            except SourceUnavailable as exc:
                attempt += 1
                if attempt >= self.reader.attempts:
                    raise
                self.reader.telemetry.warning(
                    "S3 read interrupted; resuming",
                    bucket=self.ref.bucket,
                    key=self.ref.key,
                    attempt=attempt,
                    next_position=self.next_position,
                    reason=str(exc),
                )
                await backoff.sleep()

    async def _read_once(self, send: trio.MemorySendChannel[list[BulkItem]]) -> None:
        # Resume a plain object with a Range GET; a gzip one is read again and skipped.
        ranged = self.next_offset > 0 and self._plain is True and self.parser.rangeable
        start = self.next_offset if ranged else 0
        async with self.reader.s3.open_object(
            self.ref.bucket,
            self.ref.key,
            region=self.task.region,
            start=start,
            if_match=self.ref.etag,
            version_id=self.ref.version_id,
        ) as body:
            if not self.ref.etag and body.etag:
                # The identity in every _id must be fixed before the first record.
                self.ref = dataclasses.replace(self.ref, etag=body.etag)
                self.task.tracker.ref = self.ref
            decompressor = Decompressor()
            cutter = (
                ObjectCutter(self.parser, self.next_position, self.next_offset)
                if ranged
                else ObjectCutter(self.parser)
            )
            async for chunk in body.chunks:
                pieces = decompressor.feed(chunk)
                while (text := await self._next_piece(pieces)) is not None:
                    self._set_plain(not decompressor.compressed)
                    await self._ship(cutter.feed(text), cutter, send)
            for text in decompressor.close():
                self._set_plain(not decompressor.compressed)
                await self._ship(cutter.feed(text), cutter, send)
            try:
                await self._ship(cutter.close(), cutter, send)
            except ParseError as exc:
                raise ObjectCorrupt(f"incomplete document at the end: {exc.reason}") from None
            self.task.tracker.total = cutter.next_position - 1

    async def _next_piece(self, pieces: Iterator[bytes]) -> bytes | None:
        """The next decompressed piece (inflated in this reader's CPU turn), or None."""
        async with self.reader.cpu_turn:
            return next(pieces, None)

    def _set_plain(self, plain: bool) -> None:
        self._plain = plain
        self.task.tracker.plain = plain

    async def _ship(
        self,
        records: Iterable[RawRecord],
        cutter: ObjectCutter,
        send: trio.MemorySendChannel[list[BulkItem]],
    ) -> None:
        # A slice a turn: parsing is CPU work, and the bulk workers and pollers must get
        # the loop between slices (each send is a checkpoint).
        pending = iter(records)
        while True:
            async with self.reader.cpu_turn:
                batch = list(itertools.islice(pending, SLICE_RECORDS))
                failed: list[tuple[RawRecord, ParseFailure]] = []
                items = self._items(batch, failed)
            if not batch:
                break
            if failed:
                await self._dead_letter(failed)
            if items:
                self.task.tracker.add(len(items))
                self.reader.telemetry.count("events_read", len(items))
                await send.send(items)
            else:
                await trio.lowlevel.checkpoint()
        self.next_position = max(self.next_position, cutter.next_position)
        self.next_offset = max(self.next_offset, cutter.next_offset)

    def _items(
        self, records: Iterable[RawRecord], failed: list[tuple[RawRecord, ParseFailure]]
    ) -> list[BulkItem]:
        namer, tracker = self.reader.namer, self.task.tracker
        content_ids = self.reader.content_ids
        if self._ids is None or self._ids[0] is not self.ref:
            self._ids = (self.ref, document_ids(self.ref))
        ids = self._ids[1]
        items: list[BulkItem] = []
        for record in records:
            if record.position < self.next_position:
                self.parser.observe(record)  # already shipped; headers still count
                continue
            if self.acked_beyond and any(record.position in r for r in self.acked_beyond):
                self.parser.observe(record)
                tracker.pass_over(record.position, record.end)  # acknowledged before a restart
                continue
            doc = self.parser.parse(record)
            if isinstance(doc, ParseFailure):
                failed.append((record, doc))  # settled once dead-lettered
                continue
            if doc is None:
                tracker.pass_over(record.position, record.end)
                continue
            items.append(
                BulkItem(
                    index=namer(doc),
                    doc_id=(
                        content_id(record.raw + record.ending)
                        if content_ids
                        else ids(record.position)
                    ),
                    source=_encoder.encode(doc),
                    tracker=tracker,
                    position=record.position,
                    end=record.end,
                )
            )
        return items

    async def _dead_letter(self, failed: list[tuple[RawRecord, ParseFailure]]) -> None:
        """Keep the records that could not be parsed (off the event loop), then settle
        them: an entry is in the store before its record counts as done."""
        reader, tracker = self.reader, self.task.tracker
        await reader.dead_letter.write(
            [
                entry(
                    failure.kind,
                    failure.reason,
                    self.ref,
                    record.position,
                    record.offset,
                    raw=record.raw.decode("utf-8", "replace"),
                )
                for record, failure in failed
            ]
        )
        for record, failure in failed:
            tracker.pass_over(record.position, record.end)
            reader.telemetry.count("events_parse_failed")
            tracker.count("parse_failed")
            if tracker.counts["parse_failed"] > _LOGGED_PER_OBJECT:
                continue  # the rest are counted and in the dead-letter store
            reader.telemetry.warning(
                "record not parsed, dead-lettered",
                bucket=self.ref.bucket,
                key=self.ref.key,
                line=record.position,
                reason=failure.reason,
            )
