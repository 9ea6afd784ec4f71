"""A fake Elasticsearch / OpenSearch cluster for tests, with fault injection.

One :class:`FakeEs` holds the state (documents by ``(index, _id)``, the requests seen,
the ack timeline) and the fault knobs. It answers over two front ends that share it:

* a real HTTP/1.1 server on ``127.0.0.1`` and an ephemeral port (stdlib
  :class:`~http.server.ThreadingHTTPServer` in a daemon thread), for in-process tests and
  for a daemon started as a subprocess::

      with FakeEs() as es:
          run_daemon(es_url=es.url)
          assert es.wait_for(lambda es: len(es.docs) == 10, timeout=5)

* :meth:`FakeEs.transport`, an httpx transport (sync and async) that calls the same code
  without sockets, so component tests can run it on trio's autojump clock (its latency
  sleeps with :func:`trio.sleep`, and ``clock=trio.current_time`` stamps acks in virtual
  time).

Only the write path is imitated: ``GET``/``HEAD /`` and ``POST /_bulk`` or
``POST /{index}/_bulk`` (NDJSON, optionally gzip) with ``create`` (never overwrites: 409)
and ``index`` actions; what was received is recorded (:attr:`FakeEs.docs`,
:attr:`FakeEs.requests`, :attr:`FakeEs.first_ack`) for exactly-once checks. Any other
API answers 400 like an unknown endpoint: what a cluster stores or maps (templates,
mappings, searches, counts) is asked of the real OpenSearch node (the ``opensearch_url``
fixture). Query strings (``refresh``, ``filter_path``) are ignored.

Fault knobs, settable from any thread while the server runs:

* :attr:`FakeEs.down`: ``"503"``, ``"429"`` or ``"401"`` answers every request with that
  status; ``"reset"`` reads the request then resets the connection (httpx raises
  ``ReadError``; via :meth:`~FakeEs.transport` too).
* :attr:`FakeEs.item_plan`: per-item statuses instead of applying the item (see its doc).
* :attr:`FakeEs.apply_then_drop`: the next N bulk requests are applied, then the connection
  is closed without an answer (httpx raises ``RemoteProtocolError``).
* :attr:`FakeEs.latency`: seconds to wait before handling each request.
* :attr:`FakeEs.max_content_length`: bodies longer than this (after ``Content-Encoding``
  decoding, as Elasticsearch counts) get ``413``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Literal, final
from urllib.parse import unquote, urlsplit

from tests.fakes.es_frontends import FakeEsTransport, Server
from tests.fakes.es_wire import (
    DOWN_ERRORS,
    ITEM_ERRORS,
    SHARDS,
    WWW_AUTHENTICATE,
    Action,
    BadRequest,
    DocKey,
    DownMode,
    Hangup,
    ItemPlan,
    Outcome,
    Reply,
    RequestRecord,
    decode_body,
    dumps,
    error_reply,
    json_reply,
    parse_bulk,
    unsupported_content_type,
)

__all__ = ["DownMode", "FakeEs", "FakeEsTransport", "ItemPlan", "RequestRecord"]


@final
class FakeEs:
    """A fake cluster: state, fault knobs, an HTTP server and an httpx transport.

    Args:
        flavor: what ``GET /`` claims to be, ``"elasticsearch"`` or ``"opensearch"``.
        version: the version number in ``GET /`` (default 8.15.3 or 2.17.1).
        clock: the time source of :attr:`first_ack` (``time.monotonic`` is comparable
            across processes on one host; use ``trio.current_time`` with
            :meth:`transport` on a mock clock).
        latency: initial value of :attr:`latency`.
        max_content_length: initial value of :attr:`max_content_length`.
    """

    def __init__(
        self,
        *,
        flavor: Literal["elasticsearch", "opensearch"] = "elasticsearch",
        version: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        latency: float = 0.0,
        max_content_length: int | None = None,
    ) -> None:
        if flavor not in ("elasticsearch", "opensearch"):
            raise ValueError(f"unknown flavor {flavor!r}")
        self.flavor = flavor
        self.version = version or ("8.15.3" if flavor == "elasticsearch" else "2.17.1")
        self._clock = clock
        self._cond = threading.Condition()  # guards everything below; reentrant
        self._docs: dict[DocKey, dict[str, Any]] = {}
        self._versions: dict[DocKey, int] = {}
        self._requests: list[RequestRecord] = []
        self._first_ack: dict[DocKey, float] = {}
        self._item_statuses: Counter[int] = Counter()
        self._internal_errors: list[str] = []
        self._seq_no = 0
        self._auto_ids = itertools.count(1)
        self._down: DownMode | None = None
        self._item_plan: Callable[[str, int], int | None] | dict[str | int, list[int]] | None
        self._item_plan = None
        self._apply_then_drop = 0
        self._latency = latency
        self._max_content_length = max_content_length
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeEs:
        """Start the HTTP server on 127.0.0.1 and a free port; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("FakeEs is already started")
        self._server = Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-es",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the server and drop its open connections (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeEs:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("FakeEs is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def transport(self) -> FakeEsTransport:
        """An httpx transport (sync and async) served by this fake, without sockets."""
        return FakeEsTransport(self)

    # -- state (snapshots, safe to read from any thread) --------------------------------

    @property
    def docs(self) -> dict[DocKey, dict[str, Any]]:
        """A snapshot of the stored documents, ``{(index, _id): source}``."""
        with self._cond:
            return dict(self._docs)

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request received, in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def first_ack(self) -> dict[DocKey, float]:
        """When each document was first acknowledged (201/200/409 sent), by ``clock``.

        Stamped just before the response is written, so it precedes the client's receipt.
        Items applied by a dropped response are not acked until a later answer says so.
        """
        with self._cond:
            return dict(self._first_ack)

    @property
    def item_statuses(self) -> Counter[int]:
        """How many bulk items were answered with each status (dropped answers excluded)."""
        with self._cond:
            return Counter(self._item_statuses)

    @property
    def internal_errors(self) -> list[str]:
        """Bugs in the fake itself (answered with 500); tests should expect none."""
        with self._cond:
            return list(self._internal_errors)

    def put_doc(self, index: str, doc_id: str, source: dict[str, Any]) -> None:
        """Store a document directly, e.g. to make a later ``create`` conflict."""
        with self._cond:
            self._store((index, doc_id), source)
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget documents, requests, acks and counters (knobs are kept)."""
        with self._cond:
            self._docs.clear()
            self._versions.clear()
            self._requests.clear()
            self._first_ack.clear()
            self._item_statuses.clear()

    def wait_for(self, predicate: Callable[[FakeEs], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds (re-checked after each request).

        Returns:
            Whether it held before ``timeout`` seconds passed.
        """
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    # -- fault knobs -----------------------------------------------------------------------

    @property
    def down(self) -> DownMode | None:
        """Whole-request fault: ``"503"``, ``"429"``, ``"401"``, ``"reset"`` or ``None``."""
        return self._down

    @down.setter
    def down(self, mode: DownMode | None) -> None:
        if mode not in (None, "503", "429", "401", "reset"):
            raise ValueError(f"unknown down mode {mode!r}")
        with self._cond:
            self._down = mode

    @property
    def item_plan(self) -> Callable[[str, int], int | None] | dict[str | int, list[int]] | None:
        """Per-item statuses returned *instead of* applying the item.

        A callable ``(doc_id, position) -> status | None`` is asked for every item (its
        state is the caller's; ``None`` applies the item). A mapping's keys are an ``_id``
        (str) or a 0-based position in a bulk request (int); its values are a status or a
        sequence of statuses consumed one per matching item, so ``{"a": [429, 429]}``
        rejects ``a`` twice and then applies it. An ``_id`` entry wins over a position.

        Statuses: 2xx applies normally; 409 is a ``version_conflict_engine_exception``; 429,
        503 and 400 (``mapper_parsing_exception``) and any other status are not applied.
        Reading returns the remaining plan (a copy).
        """
        with self._cond:
            plan = self._item_plan
            if plan is None or callable(plan):
                return plan
            return {k: list(v) for k, v in plan.items()}

    @item_plan.setter
    def item_plan(self, plan: ItemPlan | None) -> None:
        stored: Callable[[str, int], int | None] | dict[str | int, list[int]] | None = None
        if callable(plan):
            stored = plan
        elif plan is not None:
            stored = {k: [v] if isinstance(v, int) else list(v) for k, v in plan.items()}
        with self._cond:
            self._item_plan = stored

    @property
    def apply_then_drop(self) -> int:
        """How many more bulk requests are applied and then left unanswered."""
        return self._apply_then_drop

    @apply_then_drop.setter
    def apply_then_drop(self, count: int) -> None:
        with self._cond:
            self._apply_then_drop = max(0, count)

    @property
    def latency(self) -> float:
        """Seconds waited before handling each request."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        with self._cond:
            self._latency = max(0.0, seconds)

    @property
    def max_content_length(self) -> int | None:
        """Bodies longer than this many (decoded) bytes get 413; ``None``: no limit."""
        return self._max_content_length

    @max_content_length.setter
    def max_content_length(self, nbytes: int | None) -> None:
        with self._cond:
            self._max_content_length = nbytes

    # -- request handling (shared by both front ends) ---------------------------------------

    def _serve(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> Outcome:
        """Answer one request. ``headers`` keys must be lower case."""
        try:
            return self._serve_unguarded(method, target, headers, raw_body)
        except Exception as exc:  # a bug in the fake: make it loud, not a hang
            with self._cond:
                self._internal_errors.append(f"{method} {target}: {exc!r}")
            return error_reply(500, "fake_es_internal_error", repr(exc))
        finally:
            with self._cond:
                self._cond.notify_all()

    def _serve_unguarded(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> Outcome:
        path = urlsplit(target).path or "/"
        parts = [unquote(p) for p in path.strip("/").split("/")] if path != "/" else []
        is_bulk = method in ("POST", "PUT") and bool(parts) and parts[-1] == "_bulk"
        try:
            body = decode_body(raw_body, headers.get("content-encoding", ""))
        except BadRequest as bad:
            self._record(RequestRecord(method, path, 0, len(raw_body)))
            return error_reply(bad.status, bad.err_type, bad.reason)

        actions: list[Action] | BadRequest = []
        if is_bulk and len(parts) <= 2:
            try:
                actions = parse_bulk(body, parts[0] if len(parts) == 2 else None, self._new_id)
            except BadRequest as bad:
                actions = bad
        n_items = len(actions) if isinstance(actions, list) else 0
        self._record(RequestRecord(method, path, n_items, len(body)))

        with self._cond:
            down, limit = self._down, self._max_content_length
        if down == "reset":
            return Hangup(reset=True)
        if down is not None:
            status, err_type, reason = DOWN_ERRORS[down]
            reply = error_reply(status, err_type, reason.format(path=path))
            if status == 401:
                reply.headers["www-authenticate"] = WWW_AUTHENTICATE
            return reply
        if limit is not None and len(body) > limit:
            return error_reply(
                413,
                "content_too_long_exception",
                f"entity content is too long [{len(body)}] for the configured buffer "
                f"limit [{limit}]",
            )
        if is_bulk and len(parts) <= 2:
            if isinstance(actions, BadRequest):
                return error_reply(actions.status, actions.err_type, actions.reason)
            if bad_type := unsupported_content_type(headers.get("content-type", "")):
                return bad_type
            return self._bulk(actions)
        return self._route(method, parts)

    def _record(self, record: RequestRecord) -> None:
        with self._cond:
            self._requests.append(record)

    def _route(self, method: str, parts: list[str]) -> Reply:
        """``GET``/``HEAD /``; anything else is what a cluster says to an unknown API. The
        read side (templates, mappings, documents, counts) is not imitated: ask the real
        node (``opensearch_url``)."""
        if not parts and method in ("GET", "HEAD"):
            return json_reply(200, self._info())
        return json_reply(
            400,
            {
                "error": f"no handler found for uri [/{'/'.join(parts)}] and method [{method}]",
                "status": 400,
            },
        )

    def _new_id(self) -> str:
        """An ``_id`` for an action without one."""
        return f"auto-{next(self._auto_ids):012d}"

    def _info(self) -> dict[str, Any]:
        version: dict[str, Any] = {
            "number": self.version,
            "build_type": "tar",
            "build_hash": "0000000000000000000000000000000000000000",
            "build_date": "2024-10-01T00:00:00.000000000Z",
            "build_snapshot": False,
            "lucene_version": "9.11.1",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        }
        if self.flavor == "opensearch":
            version = {"distribution": "opensearch", **version}
            tagline = "The OpenSearch Project: https://opensearch.org/"
        else:
            version = {**version, "build_flavor": "default"}
            tagline = "You Know, for Search"
        return {
            "name": "fake-node-0",
            "cluster_name": "fake-cluster",
            "cluster_uuid": "fAkEcLuStErUuId0000000",
            "version": version,
            "tagline": tagline,
        }

    def _bulk(self, actions: list[Action]) -> Outcome:
        started = time.perf_counter()
        items: list[dict[str, Any]] = []
        reply = Reply(200)
        with self._cond:
            drop = self._apply_then_drop > 0
            if drop:
                self._apply_then_drop -= 1
            for position, action in enumerate(actions):
                result = self._apply(action, position)
                items.append({action.op: result})
                reply.statuses.append(result["status"])
                if result["status"] in (200, 201, 409):
                    reply.acked.append((action.index, action.doc_id))
        if drop:
            return Hangup(reset=False)
        took = int((time.perf_counter() - started) * 1000)
        errors = any("error" in next(iter(item.values())) for item in items)
        reply.body = dumps({"took": took, "errors": errors, "items": items})
        reply.headers["content-type"] = "application/json"
        return reply

    def _apply(self, action: Action, position: int) -> dict[str, Any]:
        """Apply one item (lock held) and return its result object."""
        key = (action.index, action.doc_id)
        status = self._planned_status(action.doc_id, position)
        if status is None or 200 <= status < 300:
            if action.source is None:
                status = 400
            elif action.op == "create" and key in self._docs:
                status = 409
            else:
                result = "updated" if key in self._docs else "created"
                self._store(key, action.source)
                self._seq_no += 1
                return {
                    "_index": action.index,
                    "_id": action.doc_id,
                    "_version": self._versions[key],
                    "result": result,
                    "_shards": SHARDS,
                    "_seq_no": self._seq_no - 1,
                    "_primary_term": 1,
                    "status": 201 if result == "created" else 200,
                }
        err_type, reason = ITEM_ERRORS.get(status, ("exception", "fake failure [{id}]"))
        error = {
            "type": err_type,
            "reason": reason.format(
                id=action.doc_id, index=action.index, version=self._versions.get(key, 1)
            ),
            "index_uuid": "fAkEiNdExUuId0000000",
            "shard": "0",
            "index": action.index,
        }
        return {"_index": action.index, "_id": action.doc_id, "status": status, "error": error}

    def _planned_status(self, doc_id: str, position: int) -> int | None:
        plan = self._item_plan
        if plan is None:
            return None
        if callable(plan):
            return plan(doc_id, position)
        for key in (doc_id, position):
            queue = plan.get(key)
            if queue:
                status = queue.pop(0)
                if not queue:
                    del plan[key]
                return status
        return None

    def _store(self, key: DocKey, source: dict[str, Any]) -> None:
        self._docs[key] = source
        self._versions[key] = self._versions.get(key, 0) + 1

    def _acknowledge(self, reply: Reply) -> None:
        """Stamp the ack timeline; called just before the reply is sent."""
        with self._cond:
            now = self._clock()
            for key in reply.acked:
                self._first_ack.setdefault(key, now)
            self._item_statuses.update(reply.statuses)
            self._cond.notify_all()
