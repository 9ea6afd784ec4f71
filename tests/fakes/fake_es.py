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

The API covered is what a bulk shipper needs: ``GET``/``HEAD /``, ``POST /_bulk`` and
``POST /{index}/_bulk`` (NDJSON, optionally gzip), ``create`` and ``index`` actions,
``GET /_cluster/health``, ``PUT /_index_template/{name}`` and ``PUT /_template/{name}``,
plus ``PUT``/``HEAD /{index}``, ``GET /{index}/_doc/{id}``, ``GET /{index}/_count`` and
``POST /{index}/_refresh`` for convenience. Query strings (``refresh``, ``filter_path``)
are ignored: responses always have the full shape.

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

import contextlib
import gzip
import json
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, NamedTuple, final
from urllib.parse import unquote, urlsplit

import httpx
import trio

__all__ = ["DownMode", "FakeEs", "ItemPlan", "RequestRecord"]

DownMode = Literal["503", "429", "401", "reset"]
#: ``(doc_id, position) -> status | None``, or ``{_id or position: status or [statuses]}``.
ItemPlan = Callable[[str, int], int | None] | Mapping[str | int, int | Sequence[int]]
DocKey = tuple[str, str]

_NDJSON_TYPES = ("application/json", "application/x-ndjson")
_SHARDS = {"total": 2, "successful": 1, "failed": 0}
_ITEM_ERRORS: dict[int, tuple[str, str]] = {
    400: (
        "mapper_parsing_exception",
        "failed to parse field [fake_field] of type [long] in document with id '{id}'",
    ),
    403: (
        "cluster_block_exception",
        "index [{index}] blocked by: [FORBIDDEN/8/index write (api)];",
    ),
    404: ("index_not_found_exception", "no such index [{index}]"),
    409: (
        "version_conflict_engine_exception",
        "[{id}]: version conflict, document already exists (current version [{version}])",
    ),
    429: (
        "es_rejected_execution_exception",
        "rejected execution of primary operation [coordinating_and_primary_bytes=0, "
        "replica_bytes=0, all_bytes=0, primary_operation_bytes=0, max_coordinating_and_"
        "primary_bytes=0] (fake)",
    ),
    500: ("exception", "fake internal failure for [{id}]"),
    503: ("unavailable_shards_exception", "[{index}][0] primary shard is not active Timeout: [1m]"),
}
_DOWN_ERRORS: dict[str, tuple[int, str, str]] = {
    "429": (
        429,
        "es_rejected_execution_exception",
        "rejected execution of coordinating operation (fake cluster overloaded)",
    ),
    "503": (
        503,
        "cluster_block_exception",
        "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];",
    ),
    "401": (
        401,
        "security_exception",
        "missing authentication credentials for REST request [{path}]",
    ),
}
_WWW_AUTHENTICATE = 'Basic realm="security" charset="UTF-8"'


class RequestRecord(NamedTuple):
    """One request the fake received (faulted ones included).

    ``nbytes`` is the body length after ``Content-Encoding`` decoding; ``n_items`` is the
    number of bulk actions (0 for other requests or an unparsable bulk body).
    """

    method: str
    path: str
    n_items: int
    nbytes: int


@dataclass(slots=True)
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    acked: list[DocKey] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Hangup:
    """Answer nothing: ``reset`` sends a TCP RST, otherwise a plain close (FIN)."""

    reset: bool


_Outcome = _Reply | _Hangup


class _BadRequest(Exception):
    def __init__(self, status: int, err_type: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.err_type, self.reason = status, err_type, reason


@dataclass(slots=True)
class _Action:
    op: str
    index: str
    doc_id: str
    source: dict[str, Any] | None  # None: the source line is not a JSON object


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
        self._indices: set[str] = set()
        self._templates: dict[str, Any] = {}
        self._requests: list[RequestRecord] = []
        self._first_ack: dict[DocKey, float] = {}
        self._item_statuses: Counter[int] = Counter()
        self._internal_errors: list[str] = []
        self._seq_no = 0
        self._auto_id = 0
        self._down: DownMode | None = None
        self._item_plan: Callable[[str, int], int | None] | dict[str | int, list[int]] | None
        self._item_plan = None
        self._apply_then_drop = 0
        self._latency = latency
        self._max_content_length = max_content_length
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeEs:
        """Start the HTTP server on 127.0.0.1 and a free port; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("FakeEs is already started")
        self._server = _Server(self)
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
    def templates(self) -> dict[str, Any]:
        """Stored templates by path: ``"_index_template/<name>"`` or ``"_template/<name>"``."""
        with self._cond:
            return dict(self._templates)

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
        """Forget documents, templates, requests, acks and counters (knobs are kept)."""
        with self._cond:
            self._docs.clear()
            self._versions.clear()
            self._indices.clear()
            self._templates.clear()
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
        if plan is not None and not callable(plan):
            plan = {k: [v] if isinstance(v, int) else list(v) for k, v in plan.items()}
        with self._cond:
            self._item_plan = plan

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
    ) -> _Outcome:
        """Answer one request. ``headers`` keys must be lower case."""
        try:
            return self._serve_unguarded(method, target, headers, raw_body)
        except Exception as exc:  # a bug in the fake: make it loud, not a hang
            with self._cond:
                self._internal_errors.append(f"{method} {target}: {exc!r}")
            return _error_reply(500, "fake_es_internal_error", repr(exc))
        finally:
            with self._cond:
                self._cond.notify_all()

    def _serve_unguarded(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> _Outcome:
        path = urlsplit(target).path or "/"
        parts = [unquote(p) for p in path.strip("/").split("/")] if path != "/" else []
        is_bulk = method in ("POST", "PUT") and bool(parts) and parts[-1] == "_bulk"
        try:
            body = _decode_body(raw_body, headers.get("content-encoding", ""))
        except _BadRequest as bad:
            self._record(RequestRecord(method, path, 0, len(raw_body)))
            return _error_reply(bad.status, bad.err_type, bad.reason)

        actions: list[_Action] | _BadRequest = []
        if is_bulk and len(parts) <= 2:
            try:
                actions = self._parse_bulk(body, parts[0] if len(parts) == 2 else None)
            except _BadRequest as bad:
                actions = bad
        n_items = len(actions) if isinstance(actions, list) else 0
        self._record(RequestRecord(method, path, n_items, len(body)))

        with self._cond:
            down, limit = self._down, self._max_content_length
        if down == "reset":
            return _Hangup(reset=True)
        if down is not None:
            status, err_type, reason = _DOWN_ERRORS[down]
            reply = _error_reply(status, err_type, reason.format(path=path))
            if status == 401:
                reply.headers["www-authenticate"] = _WWW_AUTHENTICATE
            return reply
        if limit is not None and len(body) > limit:
            return _error_reply(
                413,
                "content_too_long_exception",
                f"entity content is too long [{len(body)}] for the configured buffer "
                f"limit [{limit}]",
            )
        if is_bulk and len(parts) <= 2:
            if isinstance(actions, _BadRequest):
                return _error_reply(actions.status, actions.err_type, actions.reason)
            if bad_type := _unsupported_content_type(headers.get("content-type", "")):
                return bad_type
            return self._bulk(actions)
        return self._route(method, parts, body)

    def _record(self, record: RequestRecord) -> None:
        with self._cond:
            self._requests.append(record)

    def _route(self, method: str, parts: list[str], body: bytes) -> _Reply:
        if not parts:
            if method in ("GET", "HEAD"):
                return _json_reply(200, self._info())
        elif parts[0] in ("_index_template", "_template") and len(parts) == 2:
            return self._template(method, parts[0], parts[1], body)
        elif parts[0] == "_cluster" and len(parts) in (2, 3) and parts[1] == "health":
            if method == "GET":
                return _json_reply(200, self._health())
        elif not parts[0].startswith("_"):
            reply = self._index_api(method, parts, body)
            if reply is not None:
                return reply
        return _json_reply(
            400,
            {
                "error": f"no handler found for uri [/{'/'.join(parts)}] and method [{method}]",
                "status": 400,
            },
        )

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

    def _health(self) -> dict[str, Any]:
        with self._cond:
            n_indices = len(self._indices)
        return {
            "cluster_name": "fake-cluster",
            "status": "green",
            "timed_out": False,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": n_indices,
            "active_shards": n_indices,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0,
        }

    def _template(self, method: str, kind: str, name: str, body: bytes) -> _Reply:
        key = f"{kind}/{name}"
        if method in ("PUT", "POST"):
            try:
                template = json.loads(body)
            except ValueError:
                return _error_reply(400, "parse_exception", "request body is not valid JSON")
            with self._cond:
                self._templates[key] = template
            return _json_reply(200, {"acknowledged": True})
        with self._cond:
            template = self._templates.get(key)
        if template is None:
            if kind == "_index_template":
                return _error_reply(404, "resource_not_found_exception", f"{kind} [{name}] missing")
            return _json_reply(404, {})
        if method == "HEAD":
            return _Reply(200)
        if method == "GET":
            if kind == "_index_template":
                return _json_reply(
                    200, {"index_templates": [{"name": name, "index_template": template}]}
                )
            return _json_reply(200, {name: template})
        if method == "DELETE":
            with self._cond:
                self._templates.pop(key, None)
            return _json_reply(200, {"acknowledged": True})
        return _error_reply(405, "method_not_allowed", f"{method} not allowed on {key}")

    def _index_api(self, method: str, parts: list[str], body: bytes) -> _Reply | None:
        index = parts[0]
        with self._cond:
            exists = index in self._indices
            if len(parts) == 1 and method == "PUT":
                if exists:
                    return _error_reply(
                        400, "resource_already_exists_exception", f"index [{index}] exists"
                    )
                self._indices.add(index)
                return _json_reply(
                    200, {"acknowledged": True, "shards_acknowledged": True, "index": index}
                )
            if len(parts) == 1 and method == "HEAD":
                return _Reply(200 if exists else 404)
            if len(parts) == 3 and parts[1] == "_doc" and method in ("GET", "HEAD"):
                source = self._docs.get((index, parts[2]))
                if source is None:
                    return _json_reply(404, {"_index": index, "_id": parts[2], "found": False})
                return _json_reply(
                    200,
                    {
                        "_index": index,
                        "_id": parts[2],
                        "_version": self._versions[(index, parts[2])],
                        "found": True,
                        "_source": source,
                    },
                )
            if len(parts) == 2 and parts[1] == "_count" and method in ("GET", "POST"):
                count = sum(1 for i, _ in self._docs if i == index)
                return _json_reply(200, {"count": count, "_shards": _SHARDS | {"skipped": 0}})
            if len(parts) == 2 and parts[1] == "_refresh" and method in ("GET", "POST"):
                return _json_reply(200, {"_shards": _SHARDS})
        return None

    def _parse_bulk(self, body: bytes, path_index: str | None) -> list[_Action]:
        if not body:
            raise _BadRequest(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: no requests added;",
            )
        if not body.endswith(b"\n"):
            raise _BadRequest(
                400,
                "illegal_argument_exception",
                "The bulk request must be terminated by a newline [\\n]",
            )
        lines = body.split(b"\n")[:-1]
        actions: list[_Action] = []
        for n in range(0, len(lines), 2):
            try:
                meta = json.loads(lines[n])
            except ValueError:
                meta = None
            if not isinstance(meta, dict) or len(meta) != 1:
                raise _BadRequest(
                    400, "illegal_argument_exception", f"Malformed action/metadata line [{n + 1}]"
                )
            ((op, params),) = meta.items()
            if op not in ("create", "index") or not isinstance(params, dict):
                raise _BadRequest(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{n + 1}]: the fake supports only "
                    f"create and index, not [{op}]",
                )
            index = params.get("_index", path_index)
            if not isinstance(index, str) or not index:
                raise _BadRequest(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index is missing;",
                )
            if n + 1 >= len(lines):
                raise _BadRequest(
                    400,
                    "illegal_argument_exception",
                    f"The bulk request must be terminated by a newline [\\n] (line {n + 1} "
                    "has no source)",
                )
            doc_id = params.get("_id")
            if doc_id is None:
                with self._cond:
                    self._auto_id += 1
                    doc_id = f"auto-{self._auto_id:012d}"
            try:
                source = json.loads(lines[n + 1])
            except ValueError:
                source = None
            actions.append(
                _Action(op, index, str(doc_id), source if isinstance(source, dict) else None)
            )
        return actions

    def _bulk(self, actions: list[_Action]) -> _Outcome:
        started = time.perf_counter()
        items: list[dict[str, Any]] = []
        reply = _Reply(200)
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
            return _Hangup(reset=False)
        took = int((time.perf_counter() - started) * 1000)
        errors = any("error" in next(iter(item.values())) for item in items)
        reply.body = _dumps({"took": took, "errors": errors, "items": items})
        reply.headers["content-type"] = "application/json"
        return reply

    def _apply(self, action: _Action, position: int) -> dict[str, Any]:
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
                    "_shards": _SHARDS,
                    "_seq_no": self._seq_no - 1,
                    "_primary_term": 1,
                    "status": 201 if result == "created" else 200,
                }
        err_type, reason = _ITEM_ERRORS.get(status, ("exception", "fake failure [{id}]"))
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
        self._indices.add(key[0])

    def _acknowledge(self, reply: _Reply) -> None:
        """Stamp the ack timeline; called just before the reply is sent."""
        with self._cond:
            now = self._clock()
            for key in reply.acked:
                self._first_ack.setdefault(key, now)
            self._item_statuses.update(reply.statuses)
            self._cond.notify_all()


@final
class FakeEsTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport answering from a :class:`FakeEs` without sockets.

    A hang-up becomes the exception httpx raises on a real socket: ``ReadError`` for a
    reset, ``RemoteProtocolError`` for a dropped answer.
    """

    def __init__(self, fake: FakeEs) -> None:
        self._fake = fake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer a sync request (latency with :func:`time.sleep`)."""
        body = request.read()
        if self._fake.latency:
            time.sleep(self._fake.latency)
        return self._respond(request, body)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer an async request (latency with :func:`trio.sleep`)."""
        body = await request.aread()
        if self._fake.latency:
            await trio.sleep(self._fake.latency)
        return self._respond(request, body)

    def _respond(self, request: httpx.Request, body: bytes) -> httpx.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        outcome = self._fake._serve(
            request.method, str(request.url.raw_path, "ascii"), headers, body
        )
        if isinstance(outcome, _Hangup):
            if outcome.reset:
                raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        headers_out = _response_headers(self._fake, outcome, headers)
        self._fake._acknowledge(outcome)
        content = b"" if request.method == "HEAD" else outcome.body
        return httpx.Response(outcome.status, headers=headers_out, content=content, request=request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a daemon may open many connections at once

    def __init__(self, fake: FakeEs) -> None:
        self.fake = fake
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def drop_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, alive=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log."""

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self._read_body(headers)
        if fake.latency:
            time.sleep(fake.latency)
        outcome = fake._serve(self.command, self.path, headers, body)
        if isinstance(outcome, _Hangup):
            self.close_connection = True
            if outcome.reset:
                # SO_LINGER 0: closing sends RST instead of FIN. The fd really closes when
                # the handler releases rfile/wfile, before the server's shutdown(SHUT_WR).
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            return
        out_headers = _response_headers(fake, outcome, headers)
        fake._acknowledge(outcome)
        self.send_response(outcome.status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(outcome.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(outcome.body)

    def _read_body(self, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""


def _decode_body(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        raise _BadRequest(400, "parse_exception", f"cannot decode {encoding} body: {exc}") from None
    if encoding not in ("", "identity"):
        raise _BadRequest(415, "illegal_argument_exception", f"unsupported encoding [{encoding}]")
    return body


def _unsupported_content_type(content_type: str) -> _Reply | None:
    mime = content_type.split(";")[0].strip().lower()
    if mime in _NDJSON_TYPES or mime.startswith("application/vnd.elasticsearch+"):
        return None
    shown = content_type or "(missing)"
    return _json_reply(
        406, {"error": f"Content-Type header [{shown}] is not supported", "status": 406}
    )


def _response_headers(
    fake: FakeEs, reply: _Reply, request_headers: Mapping[str, str]
) -> dict[str, str]:
    headers = dict(reply.headers)
    if fake.flavor == "elasticsearch":
        headers["x-elastic-product"] = "Elasticsearch"
        if "vnd.elasticsearch+json" in request_headers.get("accept", "") and reply.body:
            major = fake.version.split(".")[0]
            headers["content-type"] = f"application/vnd.elasticsearch+json;compatible-with={major}"
    return headers


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _json_reply(status: int, doc: Any) -> _Reply:
    return _Reply(status, _dumps(doc), {"content-type": "application/json"})


def _error_reply(status: int, err_type: str, reason: str) -> _Reply:
    cause = {"type": err_type, "reason": reason}
    return _json_reply(status, {"error": {"root_cause": [cause], **cause}, "status": status})
