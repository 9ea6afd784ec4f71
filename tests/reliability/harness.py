"""The component tier (T1) of the reliability suite: the real ``run_pipeline`` on trio's
autojump clock, with every edge replaced by a fake that has fault knobs.

::

    RelSqs (FakeSqs + redrive, throttling, a second consumer)
        │ receive / heartbeat / delete           FakeS3 (an httpx transport behind the
        ▼                                        real S3Client: Range, If-Match, faults)
    run_pipeline  ── real SqsSource, ObjectReader, ElasticsearchSink, Checkpointer ──►
        │                                        FakeEs transport (per-item plans, outages)
        ▼
    MemoryStore (the checkpoint store's API over a dict, with the real merge rule)

All fakes stamp what they do with one shared sequence number (:class:`Seq`), so "the
delete came after every ack and after the done mark" (I4) is an exact comparison, not
a question of equal virtual times. :class:`Invariants` checks I1–I6 and I8 by set
comparison against the corpus oracle.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
import pytest
import trio

from s3lb.aws.notifications import UndecodableMessage, decode_notification
from s3lb.aws.s3 import S3Client
from s3lb.aws.session import AwsSession
from s3lb.aws.sqs import Message, SqsError
from s3lb.checkpoint import ObjectState
from s3lb.checkpoint._lmdb import merge_states
from s3lb.config import Config, loads
from s3lb.pipeline import Clients, run_pipeline
from s3lb.telemetry import Telemetry
from tests.fakes.fake_es import FakeEs
from tests.fakes.fake_sqs import FakeSqs, _Stored
from tests.reliability.corpus import Corpus, CorpusObject
from tests.support.configs import s3lb_config

__all__ = [
    "QUEUE",
    "FakeS3",
    "Invariants",
    "MemoryStore",
    "RelSqs",
    "Rig",
    "Seq",
    "dead_letters",
    "rig_config",
]

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/s3lb-rel"
ENDPOINT = "http://aws.rel.invalid"


class Seq:
    """A shared, strictly increasing stamp: every fake's events are totally ordered."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def __call__(self) -> float:
        return float(next(self._next))


# -- SQS ------------------------------------------------------------------------------


@dataclass(eq=False)
class RelSqs(FakeSqs):
    """:class:`FakeSqs` plus what the scenarios need.

    - ``max_receive_count``: a redrive policy; a message received that many times is
      moved to :attr:`dlq` instead of being delivered again (as SQS does).
    - ``receive_failures``: the next N receives raise a throttling error.
    - :meth:`steal`: a second consumer receives the message (our handle dies).
    - :attr:`events`: ``(seq, virtual time, action, message id, value)`` for every call.
    - :attr:`max_in_flight`: the most messages ever invisible at once (I8).
    """

    seq: Seq = field(default_factory=Seq)
    max_receive_count: int = 0
    receive_failures: int = 0
    dlq: list[_Stored] = field(default_factory=list)
    events: list[tuple[float, float, str, str, float]] = field(default_factory=list)
    max_in_flight: int = 0
    stolen: set[str] = field(default_factory=set)

    def _note(self, action: str, message_id: str, value: float = 0.0) -> None:
        super()._note(action, message_id, value)
        self.events.append((self.seq(), trio.current_time(), action, message_id, value))

    def in_flight(self) -> int:
        """Messages received and invisible now (stolen ones excluded)."""
        now = trio.current_time()
        return sum(
            1
            for stored in itertools.chain.from_iterable(self._queues.values())
            if stored.receive_count
            and stored.visible_at > now
            and stored.message_id not in self.stolen
        )

    async def receive(self, queue_url: str, max_messages: int, wait_time: float) -> list[Message]:
        if self.receive_failures:
            self.receive_failures -= 1
            await trio.sleep(0)
            raise SqsError(
                "SQS ReceiveMessage failed: HTTP 400 ThrottlingException: Rate exceeded",
                "ThrottlingException",
                400,
            )
        out = await super().receive(queue_url, max_messages, wait_time)
        self.max_in_flight = max(self.max_in_flight, self.in_flight())
        return out

    def _before_receive(self, queue_url: str, now: float) -> None:
        self._redrive(queue_url, now)

    def _redrive(self, queue_url: str, now: float) -> None:
        """SQS's redrive policy: a message due again after ``max_receive_count``
        receives goes to the dead-letter queue instead."""
        if not self.max_receive_count:
            return
        queue = self._queues.get(queue_url, [])
        for stored in list(queue):
            if stored.visible_at <= now and stored.receive_count >= self.max_receive_count:
                queue.remove(stored)
                self.dlq.append(stored)
                self._note("redrive", stored.message_id, stored.receive_count)

    def steal(self, queue_url: str, message_id: str, hold: float) -> None:
        """Another consumer receives ``message_id`` now and holds it ``hold`` seconds
        (and then dies without deleting it)."""
        for stored in self._queues.get(queue_url, []):
            if stored.message_id == message_id:
                stored.receive_count += 1
                stored.visible_at = trio.current_time() + hold
                stored.handle = f"{stored.message_id}/{stored.receive_count}/other"
                self.stolen.add(message_id)
                self._note("stolen", message_id, stored.receive_count)
                return
        raise KeyError(message_id)

    def times(self, action: str, message_id: str | None = None) -> list[float]:
        """Virtual times of every ``action`` (of ``message_id``)."""
        return [t for _, t, a, m, _ in self.events if a == action and message_id in (None, m)]

    def bodies(self) -> dict[str, str]:
        """Every message body ever sent, by id."""
        return dict(self._bodies)

    def send(self, queue_url: str, body: str) -> str:
        message_id = super().send(queue_url, body)
        self._bodies[message_id] = body
        return message_id

    def __post_init__(self) -> None:
        self._bodies: dict[str, str] = {}


# -- S3 -------------------------------------------------------------------------------


@dataclass
class _S3Object:
    body: bytes
    etag: str
    version_id: str = ""


@dataclass(frozen=True, slots=True)
class GetRecord:
    """One GET the fake answered: when, what, from which byte, with which status."""

    time: float
    bucket: str
    key: str
    start: int
    if_match: str
    status: int


class _Body(httpx.AsyncByteStream):
    """A response body in chunks; ``cut`` bytes in, the connection is reset."""

    def __init__(self, data: bytes, chunk: int, cut: int | None, latency: float) -> None:
        self.data, self.chunk, self.cut, self.latency = data, chunk, cut, latency

    async def __aiter__(self) -> AsyncIterator[bytes]:
        limit = len(self.data) if self.cut is None else min(self.cut, len(self.data))
        for start in range(0, limit, self.chunk):
            if self.latency:
                await trio.sleep(self.latency)
            else:
                await trio.lowlevel.checkpoint()
            yield self.data[start : min(start + self.chunk, limit)]
        if self.cut is not None:
            raise httpx.ReadError("[Errno 104] Connection reset by peer")

    async def aclose(self) -> None:
        pass


class FakeS3(httpx.AsyncBaseTransport):
    """S3 GetObject behind the real :class:`~s3lb.aws.s3.S3Client` (path-style URLs).

    Honours ``Range: bytes=N-``, ``If-Match`` and ``versionId``. Fault knobs:

    - :attr:`status_plan` ``{key: [status, ...]}``: the next GETs of ``key`` answer these
      (503 ``SlowDown``, 500, 403 ``AccessDenied``…), one per GET; 0 serves normally;
    - :attr:`reset_plan` ``{key: [nbytes, ...]}``: the next GETs of ``key`` are cut after
      ``nbytes`` bytes of body with a connection reset;
    - :attr:`overwrite_on_get` ``{key: new body}``: the object is overwritten (new ETag)
      just after the first GET of ``key`` starts;
    - :attr:`latency`: virtual seconds before each chunk.
    """

    def __init__(self, seq: Seq | None = None, chunk: int = 64 * 1024) -> None:
        self.seq = seq or Seq()
        self.chunk = chunk
        self.objects: dict[tuple[str, str], _S3Object] = {}
        self.versions: dict[tuple[str, str, str], _S3Object] = {}
        self.gets: list[GetRecord] = []
        self.status_plan: dict[str, list[int]] = {}
        self.reset_plan: dict[str, list[int]] = {}
        self.overwrite_on_get: dict[str, bytes] = {}
        self.latency = 0.0
        self._versions = itertools.count(1)

    def put(self, bucket: str, key: str, body: bytes, *, versioned: bool = False) -> _S3Object:
        """Store ``body``; the ETag is its MD5, as for a single-part upload."""
        version = f"v{next(self._versions)}" if versioned else ""
        obj = _S3Object(body, hashlib.md5(body, usedforsecurity=False).hexdigest(), version)
        self.objects[(bucket, key)] = obj
        if version:
            self.versions[(bucket, key, version)] = obj
        return obj

    def upload(self, corpus: Corpus | Iterable[CorpusObject], *, versioned: bool = False) -> None:
        """Store every object of ``corpus`` and set their ETags (and version ids)."""
        objects = corpus.objects if isinstance(corpus, Corpus) else corpus
        for obj in objects:
            stored = self.put(obj.bucket, obj.key, obj.body, versioned=versioned)
            obj.etag, obj.version_id = stored.etag, stored.version_id

    def delete(self, bucket: str, key: str) -> None:
        """Remove the current version."""
        self.objects.pop((bucket, key), None)

    def get_starts(self, key: str) -> list[int]:
        """The byte each successful GET of ``key`` started from."""
        return [g.start for g in self.gets if g.key == key and g.status in (200, 206)]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw_path, _, query = request.url.raw_path.decode("ascii").partition("?")
        bucket, _, key = unquote(raw_path.lstrip("/")).partition("/")
        version = parse_qs(query).get("versionId", [""])[0]
        range_header = request.headers.get("range", "")
        start = int(range_header.removeprefix("bytes=").rstrip("-")) if range_header else 0
        if_match = request.headers.get("if-match", "").strip('"')

        def answer(status: int, **kwargs: Any) -> httpx.Response:
            self.gets.append(GetRecord(trio.current_time(), bucket, key, start, if_match, status))
            return httpx.Response(status, request=request, **kwargs)

        planned = self.status_plan.get(key)
        status = planned.pop(0) if planned else 0
        if status:
            codes = {403: "AccessDenied", 500: "InternalError", 503: "SlowDown"}
            return answer(status, content=_error_xml(codes.get(status, "Error"), key))
        obj = (
            self.versions.get((bucket, key, version))
            if version
            else self.objects.get((bucket, key))
        )
        if obj is None:
            return answer(404, content=_error_xml("NoSuchKey", key))
        if if_match and if_match != obj.etag:
            return answer(412, content=_error_xml("PreconditionFailed", key))
        if start and start >= len(obj.body):
            return answer(416, content=_error_xml("InvalidRange", key))
        replacement = self.overwrite_on_get.pop(key, None)
        if replacement is not None:
            self.put(bucket, key, replacement)
        cuts = self.reset_plan.get(key)
        cut = cuts.pop(0) if cuts else None
        data = obj.body[start:]
        headers = {"etag": f'"{obj.etag}"', "content-length": str(len(data))}
        if obj.version_id:
            headers["x-amz-version-id"] = obj.version_id
        return answer(
            206 if start else 200,
            headers=headers,
            stream=_Body(data, self.chunk, cut, self.latency),
        )


def _error_xml(code: str, key: str) -> bytes:
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
        f"<Message>fake {code}</Message><Key>{key}</Key></Error>"
    ).encode()


# -- checkpoint store -------------------------------------------------------------------


class MemoryStore:
    """The :class:`~s3lb.checkpoint.CheckpointStore` API over a dict, using the real
    merge rule (:func:`~s3lb.checkpoint._lmdb.merge_states`). Every commit is stamped
    with :class:`Seq` and shown to each of :attr:`observers` (I5 is checked there).
    """

    def __init__(self, seq: Seq | None = None) -> None:
        self.seq = seq or Seq()
        self.states: dict[tuple[str, str, str], ObjectState] = {}
        self.history: list[tuple[float, ObjectState]] = []
        self.observers: list[Callable[[ObjectState], None]] = []
        self.quarantined: Path | None = None
        self.path = Path("/memory/checkpoint")

    async def get(self, bucket: str, key: str, version: str) -> ObjectState | None:
        await trio.lowlevel.checkpoint()
        return self.states.get((bucket, key, version))

    async def commit(
        self,
        states: Iterable[ObjectState] = (),
        cursors: Iterable[Any] = (),
        *,
        now: float | None = None,
    ) -> None:
        batch = list(states)
        await trio.lowlevel.checkpoint()
        stamp = time.time() if now is None else now
        for state in batch:
            k = (state.bucket, state.key, state.version)
            merged = merge_states(self.states.get(k), state, stamp)
            self.states[k] = merged
            self.history.append((self.seq(), merged))
            for observe in self.observers:
                observe(merged)

    async def prune(self, older_than: float, statuses: Iterable[str] = ("done", "failed")) -> int:
        await trio.lowlevel.checkpoint()
        return 0

    async def objects(self) -> list[ObjectState]:
        return list(self.states.values())

    def done_seq(self, bucket: str, key: str, version: str) -> float | None:
        """When the object was first committed ``done``."""
        for stamp, state in self.history:
            if (state.bucket, state.key, state.version, state.status) == (
                bucket,
                key,
                version,
                "done",
            ):
                return stamp
        return None


# -- the rig ---------------------------------------------------------------------------


def rig_config(state_dir: Path, **overrides: Any) -> str:
    """The rig's configuration (:func:`~tests.support.configs.s3lb_config`, timings for
    the autojump clock); ``overrides`` are ``s3lb.*`` keys or ``output.elasticsearch.*``
    keys written with a leading ``es_`` (``__`` for a dot)."""
    es: dict[str, Any] = {
        "index": "rel-%{+yyyy.MM.dd}",
        "flush_interval": "1s",
        "bulk_max_size": 50,
        "worker": 2,
        "backoff.init": "1s",
        "backoff.max": "30s",
    }
    settings: dict[str, Any] = {
        "shutdown_timeout": "30s",
        "wait_time": "20s",
        "max_inflight_messages": 20,
        "object_workers": 4,
        "stats_interval": "1h",
    }
    for key, value in overrides.items():
        if key.startswith("es_"):
            es[key[3:].replace("__", ".")] = value
        else:
            settings[key] = value
    return s3lb_config(
        state_dir=state_dir,
        queues=[QUEUE],
        input_options={"poll_frequency": "1s"},
        es_url="http://es.rel.invalid:9200",
        es=es,
        **settings,
    )


class TimedEsTransport(httpx.AsyncBaseTransport):
    """The fake cluster's transport, noting the virtual time and the ``_id`` s of every
    bulk request (bodies are not compressed in the rig's configuration)."""

    def __init__(self, fake: FakeEs) -> None:
        self.inner = fake.transport()
        self.times: list[float] = []
        self.ids: list[list[str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(trio.current_time())
        body = await request.aread()
        self.ids.append(
            [
                next(iter(action.values()))["_id"]
                for action in map(json.loads, body.splitlines()[0::2])
                if isinstance(action, dict) and action
            ]
            if request.url.path.endswith("_bulk")
            else []
        )
        return await self.inner.handle_async_request(request)


class Rig:
    """The fakes, passed into ``run_pipeline`` as its :class:`Clients`.

    Use the :func:`rig` fixture; :meth:`run` runs the daemon until a condition holds.
    """

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seq = Seq()
        self.tmp_path = tmp_path
        self.state_dir = tmp_path / "state"
        self.sqs = RelSqs(visibility=30, seq=self.seq)
        self.s3 = FakeS3(self.seq)
        self.es = FakeEs(clock=self.seq)
        self.es_transport = TimedEsTransport(self.es)
        self.store = MemoryStore(self.seq)
        #: Checkpoint stores by state_dir: a second daemon gets its own.
        self.stores: dict[str, MemoryStore] = {str(self.state_dir): self.store}
        self.telemetry = Telemetry()
        self.runs = 0
        for name, value in {
            "AWS_ACCESS_KEY_ID": "AKIARELIABILITYTEST0",
            "AWS_SECRET_ACCESS_KEY": "rel-secret-key",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": ENDPOINT,
        }.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
            monkeypatch.delenv(name, raising=False)
        self.clients = Clients(
            sqs=lambda _session, _http: self.sqs,
            s3=self._s3_client,
            es_transport=self.es_transport,
            open_store=self._open_store,
        )
        self._session: AwsSession | None = None

    @contextlib.asynccontextmanager
    async def _open_store(self, state_dir: str, **_kwargs: Any) -> AsyncIterator[MemoryStore]:
        store = self.stores.setdefault(str(state_dir), MemoryStore(self.seq))
        yield store

    def _s3_client(self, session: AwsSession, _http: httpx.AsyncClient) -> S3Client:
        return S3Client(session, httpx.AsyncClient(transport=self.s3))

    def config(self, **overrides: Any) -> Config:
        """The rig's configuration with ``overrides`` (see :func:`rig_config`)."""
        state_dir = overrides.pop("state_dir", self.state_dir)
        config, warnings = loads(rig_config(state_dir, **overrides))
        assert not warnings, warnings
        return config

    def send(
        self, objects: Iterable[CorpusObject], *, per_message: int = 1, sns: bool = False
    ) -> list[str]:
        """Notify ``objects``, ``per_message`` per message; returns the message ids."""
        from tests.reliability.corpus import notification

        batch = list(objects)
        return [
            self.sqs.send(QUEUE, notification(batch[i : i + per_message], sns=sns))
            for i in range(0, len(batch), per_message)
        ]

    def queue_empty(self) -> bool:
        """No message left in the queue (the DLQ does not count)."""
        return not self.sqs.stored(QUEUE)

    async def run(
        self,
        config: Config,
        until: Callable[[], bool],
        *,
        limit: float = 3600,
        during: Callable[[Rig], Any] | None = None,
        telemetry: Telemetry | None = None,
    ) -> Telemetry:
        """Run the daemon until ``until()`` holds (checked every virtual second), then
        stop it as SIGTERM would, and wait for its exit. ``during`` runs alongside
        (fault schedules). Fails after ``limit`` virtual seconds."""
        if self._session is None:
            self._session = AwsSession("us-east-1")
            # Credentials are looked up in a worker thread, during which the autojump
            # clock would race ahead of a running pipeline: resolve them now, while no
            # timer is pending.
            await self._session.sign("GET", ENDPOINT + "/", service="s3", region="us-east-1")
        self.runs += 1
        telemetry = self.telemetry if telemetry is None else telemetry
        stop = trio.Event()
        with trio.fail_after(limit):
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    while not until():
                        await trio.sleep(1)
                    stop.set()

                nursery.start_soon(watch)
                if during is not None:
                    nursery.start_soon(during, self)
                await run_pipeline(
                    config, telemetry, stop, session=self._session, clients=self.clients
                )
                nursery.cancel_scope.cancel()
        return telemetry


# -- invariants ------------------------------------------------------------------------


def dead_letters(state_dir: Path) -> list[dict[str, Any]]:
    """Every dead-letter entry under ``state_dir``."""
    return [
        json.loads(line)
        for path in sorted((state_dir / "dead-letter").glob("*.ndjson"))
        for line in path.read_text().splitlines()
    ]


class Invariants:
    """I1–I6 and I8 of RELIABILITY.md over a rig and the corpus oracle.

    Create it before the run: it registers the I5 observer on the store, which checks
    every committed watermark against what the cluster had acknowledged at that moment.
    """

    def __init__(
        self, rig: Rig, corpus: Corpus, rejected: Mapping[int, Iterable[int]] | None = None
    ):
        self.rig = rig
        self.corpus = corpus
        self.rejected = {oid: set(p) for oid, p in (rejected or {}).items()}
        self.violations: list[str] = []
        self._last: dict[tuple[str, str, str], int] = {}
        rig.store.observers.append(self._observe)

    # I5, at every commit
    def _observe(self, state: ObjectState) -> None:
        try:
            obj = self.corpus.by_key(state.bucket, state.key)
        except KeyError:
            return
        if obj.ref.identity != state.version:
            return
        acked_ids = self.rig.es.first_ack
        acked = {doc_id for _, doc_id in acked_ids}
        dead = {e["_id"] for e in dead_letters(self.rig.state_dir) if e["kind"] == "rejected"}
        prefix = 0
        for record in obj.records:
            settled = (
                record.doc is None
                or obj.doc_id(record.position) in acked
                or obj.doc_id(record.position) in dead
            )
            if not settled:
                break
            prefix = record.position
        where = f"{obj.key} v={state.version}"
        if state.acked > prefix:
            self.violations.append(f"I5: {where} watermark {state.acked} > acked prefix {prefix}")
        k = (state.bucket, state.key, state.version)
        if state.acked < self._last.get(k, 0):
            self.violations.append(f"I5: {where} watermark moved back to {state.acked}")
        self._last[k] = max(self._last.get(k, 0), state.acked)
        if state.acked and state.offset > 0 and state.offset != obj.records[state.acked - 1].end:
            self.violations.append(
                f"I5: {where} offset {state.offset} is not the end of record {state.acked}"
            )
        if state.status == "done" and state.acked != len(obj.records):
            self.violations.append(f"I5: {where} done at {state.acked}/{len(obj.records)}")

    def expected_ids(self) -> set[str]:
        """Every ``_id`` that must be indexed."""
        return self.corpus.expected_ids(self.rejected)

    def indexed(self) -> list[str]:
        """Every indexed ``_id``, once per document (an id in two indexes shows twice)."""
        return [doc_id for _, doc_id in self.rig.es.docs]

    def report(self) -> dict[str, int]:
        """Expected, indexed, missing and extra counts (for printing)."""
        expected, indexed = self.expected_ids(), set(self.indexed())
        return {
            "expected": len(expected),
            "indexed": len(indexed),
            "missing": len(expected - indexed),
            "extra": len(indexed - expected),
        }

    def check_i1_i2(self) -> None:
        """I1 every expected id indexed; I2 nothing else, and one document per id."""
        expected = self.expected_ids()
        ids = self.indexed()
        doubled = [i for i, n in Counter(ids).items() if n > 1]
        missing, extra = expected - set(ids), set(ids) - expected
        assert not missing, f"I1: {len(missing)} expected ids missing, e.g. {sorted(missing)[:3]}"
        assert not extra, f"I2: {len(extra)} unexpected ids, e.g. {sorted(extra)[:3]}"
        assert not doubled, f"I2: ids in more than one index: {doubled[:3]}"

    def check_i3(self) -> None:
        """I3: each stored body equals the oracle's parse of its record, and its marker
        names that very record."""
        expected = self.corpus.expected_docs(self.rejected)
        ordinals = {
            obj.doc_id(r.position): (obj.oid, r.ordinal)
            for obj in self.corpus.objects
            for r in obj.records
            if r.doc is not None
        }
        from tests.reliability.corpus import MARKER

        for (_, doc_id), body in self.rig.es.docs.items():
            assert body == expected[doc_id], f"I3: body of {doc_id} differs from the oracle"
            found = MARKER.search(json.dumps(body))
            if found and ordinals[doc_id][1]:
                got = (int(found.group(1)), int(found.group(2)))
                assert got == ordinals[doc_id], f"I3: {doc_id} holds record {got}"

    def check_i4(self, *, allow_undeleted: Iterable[str] = ()) -> None:
        """I4: every delete came after each ack of its objects' ids and after their
        ``done`` commit; ``allow_undeleted`` names messages that may remain."""
        sqs, store = self.rig.sqs, self.rig.store
        acks = {doc_id: stamp for (_, doc_id), stamp in self.rig.es.first_ack.items()}
        deletes = {m: s for s, _, a, m, _ in sqs.events if a == "delete"}
        for message_id, body in sqs.bodies().items():
            try:
                refs = decode_notification(body).objects
            except UndecodableMessage:
                continue
            if message_id not in deletes:
                continue
            stamp = deletes[message_id]
            for ref in refs:
                try:
                    obj = self.corpus.by_key(ref.bucket, ref.key)
                except KeyError:
                    continue
                if ref.identity and ref.identity != obj.ref.identity:
                    continue  # another version of the key
                ids = [obj.doc_id(r.position) for r in obj.records if r.doc is not None]
                late = [i for i in ids if i in acks and acks[i] > stamp]
                assert not late, f"I4: {message_id} deleted before {len(late)} acks of {obj.key}"
                done = store.done_seq(ref.bucket, ref.key, obj.ref.identity)
                if obj.ref.identity and ids:
                    assert done is not None and done < stamp, (
                        f"I4: {message_id} deleted before {obj.key} was committed done"
                    )

    def check_i5(self) -> None:
        """I5: no committed watermark ever ran ahead of the acknowledged prefix."""
        assert not self.violations, "\n".join(self.violations[:10])

    def check_i6(self, obj: CorpusObject) -> None:
        """I6: per object, read = indexed + duplicate + rejected + parse_failed, and the
        dead-letter store holds exactly the rejected and unparsed records."""
        state = self.rig.store.states.get((obj.bucket, obj.key, obj.ref.identity))
        assert state is not None and state.status == "done", f"I6: {obj.key} is not done"
        counts = state.records
        non_header = sum(1 for r in obj.records if r.doc is not None or r.failure)
        settled = counts.indexed + counts.duplicate + counts.rejected + counts.parse_failed
        assert settled == non_header, f"I6: {obj.key}: {counts} for {non_header} records"
        entries = [
            e
            for e in dead_letters(self.rig.state_dir)
            if (e["bucket"], e["key"], e["version"]) == (obj.bucket, obj.key, obj.ref.identity)
        ]
        unparsed = {e["position"] for e in entries if e["kind"] in ("parse_failed", "oversize")}
        rejected = {e["position"] for e in entries if e["kind"] == "rejected"}
        assert unparsed == obj.failed_positions(), f"I6: {obj.key} parse failures {unparsed}"
        assert counts.parse_failed == len(unparsed)
        assert rejected == self.rejected.get(obj.oid, set()), f"I6: {obj.key} rejects {rejected}"
        assert counts.rejected == len(rejected)

    def check_metrics(self) -> None:
        """I6's last clause: the counters equal the per-object counts."""
        c = self.rig.telemetry.counters
        totals: Counter[str] = Counter()
        for state in self.rig.store.states.values():
            totals.update(
                indexed=state.records.indexed,
                duplicate=state.records.duplicate,
                rejected=state.records.rejected,
                parse_failed=state.records.parse_failed,
            )
        assert c["events_rejected"] == totals["rejected"]
        assert c["events_parse_failed"] == totals["parse_failed"]
        assert c["events_indexed"] + c["events_duplicate"] == (
            totals["indexed"] + totals["duplicate"]
        )

    def check_i8(self, *, bulk_max_bytes: int, max_inflight: int) -> None:
        """I8: no request body above ``bulk_max_bytes``; in flight ≤ ``max_inflight``."""
        biggest = max((r.nbytes for r in self.rig.es.requests if r.n_items), default=0)
        assert biggest <= bulk_max_bytes, f"I8: a bulk body of {biggest} bytes"
        assert self.rig.sqs.max_in_flight <= max_inflight, (
            f"I8: {self.rig.sqs.max_in_flight} messages in flight"
        )

    def check_all(self, *, deleted_all: bool = True, i6: bool = True) -> None:
        """I1–I5, I6 for every object and the metrics (unless ``i6`` is false), and an
        empty queue (unless ``deleted_all`` is false)."""
        self.check_i1_i2()
        self.check_i3()
        self.check_i4()
        self.check_i5()
        if i6:
            for obj in self.corpus.objects:
                self.check_i6(obj)
            self.check_metrics()
        if deleted_all:
            assert self.rig.queue_empty(), "a message was never deleted"
