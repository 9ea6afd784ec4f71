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
comparison against the corpus oracle. The fakes live in ``tests/fakes/`` (one a module).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from s3lb.aws.notifications import UndecodableMessage, decode_notification
from s3lb.aws.s3 import S3Client
from s3lb.aws.session import AwsSession
from s3lb.checkpoint import ObjectState
from s3lb.config import Config, loads
from s3lb.pipeline import Clients, run_pipeline
from s3lb.telemetry import Telemetry
from tests.fakes.fake_es import FakeEs
from tests.fakes.fake_s3 import FakeS3
from tests.fakes.memory_store import MemoryStore
from tests.fakes.rel_sqs import RelSqs
from tests.fakes.seq import Seq
from tests.fakes.timed_es import TimedEsTransport
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
    """Every dead-letter entry under ``state_dir`` that is written to its end: entries
    are appended from a worker thread, so a read during a long write (a 10 MB line) sees
    its first part, without the newline that ends every entry."""
    return [
        json.loads(line)
        for path in sorted((state_dir / "dead-letter").glob("*.ndjson"))
        for line in path.read_text().split("\n")[:-1]
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
