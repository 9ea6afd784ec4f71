"""Counters and log lines: every notable thing s3lb does is said here, once.

:class:`Telemetry` counts named events and logs one line per notable thing with its
context (queue, message id, bucket, key…). Log lines are plain ``what key=value`` text
on stderr by default, or JSON objects with ``--log-format json``. Under journald
(``JOURNAL_STREAM`` names our stderr) text lines carry no time of their own, since
the journal stamps each line, and start with a ``<N>`` syslog priority so that
``journalctl -p warning`` works. Emitting never raises and never blocks on anything
but stderr.

Besides counters, :class:`Telemetry` keeps gauges (a value, or a function read when
asked) and histograms (:meth:`Telemetry.observe`). :data:`COUNTERS`, :data:`GAUGES`
and :data:`HISTOGRAMS` document every name; the Prometheus endpoint
(:mod:`s3lb.metrics`) exposes counter ``x`` as ``s3lb_x_total``, gauge ``x`` as
``s3lb_x`` and histogram ``x`` as ``s3lb_x_bucket``/``_sum``/``_count``.
"""

from __future__ import annotations

import bisect
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

__all__ = [
    "COUNTERS",
    "GAUGES",
    "HISTOGRAMS",
    "Histogram",
    "Telemetry",
    "TelemetrySnapshot",
    "configure_logging",
    "merge_snapshots",
    "stderr_is_journal",
    "tag_logs",
]

log = logging.getLogger("s3lb")

#: Every counter name, with what it counts. Code may count names not listed here
#: (they are still exposed), but each should be documented here.
COUNTERS: dict[str, str] = {
    # SQS
    "messages_received": "SQS messages received",
    "messages_deleted": "SQS messages deleted (every object they name was shipped)",
    "messages_ignored": "messages naming no new object (TestEvent, ObjectRemoved…), deleted",
    "messages_undecodable": "messages that are not S3 notifications, left for the redrive policy",
    "messages_kept": "finished messages kept for redelivery because an object failed",
    "messages_released": "unfinished messages made visible again (at shutdown)",
    "messages_released_max_hold": "messages released after being held in flight for max_hold",
    "messages_heartbeats": "visibility timeout extensions of in-flight messages",
    "records_ignored": "notification records that name no new object",
    "records_undecodable": "notification records that cannot be decoded, dead-lettered",
    "sqs_receive_errors": "failed SQS ReceiveMessage calls",
    # S3 objects
    "objects_started": "objects whose reading started",
    "objects_done": "objects read to the end with every event settled",
    "objects_failed": "objects that could not be read (their message is kept)",
    "objects_gone": "notified objects no longer in S3 (NoSuchKey, changed ETag)",
    "objects_bucket_missing": "objects whose bucket S3 does not know (message kept)",
    "objects_deduplicated": "notifications of an object version already being read",
    "objects_skipped": "objects not read: their key is not a log (ELB test file, digest…)",
    "objects_set_aside": "objects dead-lettered whole (format unknown); message deleted",
    "objects_resumed": "objects resumed from a checkpoint instead of from the start",
    "objects_already_done": "notified objects the checkpoint knows as done (not read again)",
    "key_regex_mismatch": "keys that key_regex_fields did not match",
    # events
    "events_read": "records read from objects and handed to the output",
    "events_indexed": "events acknowledged by the cluster (or written by the file output)",
    "events_duplicate": "events the cluster already had (409 on create)",
    "events_rejected": "events the cluster refused, dead-lettered",
    "events_parse_failed": "lines that could not be parsed (or too long), dead-lettered",
    # bulk
    "bulk_requests": "_bulk requests sent",
    "bulk_failures": "_bulk requests that failed as a whole (retried with backoff)",
    "cluster_request_timeouts": "cluster requests cut off after the output timeout (retried)",
    "bulk_item_retries": "bulk items answered 429/5xx and sent again",
    "bulk_too_large": "_bulk requests answered 413, split in halves (or dead-lettered alone)",
    "dead_letter_index_entries": "rejected documents written to dead_letter_index",
    "dead_letter_errors": "rejected documents the dead-letter store could not keep",
    # checkpoint
    "checkpoint_commits": "checkpoint store transactions",
    "checkpoint_errors": "checkpoint store failures",
    "checkpoint_quarantined": "corrupt checkpoint stores set aside for a fresh one",
    # processes
    "worker_restarts": "worker processes restarted after they died (processes > 1)",
}

#: Every gauge name, with what it measures.
GAUGES: dict[str, str] = {
    "messages_in_flight": "SQS messages received and not yet deleted, kept or released",
    "objects_in_flight": "objects being read or waiting for their events' acknowledgement",
    "bulk_items_queued": "event batches waiting for a bulk worker",
    "worker_processes": "worker processes running (processes > 1)",
    "worker_cpu_seconds": "CPU seconds used by the running worker processes (processes > 1)",
    "worker_resident_memory_bytes": "resident memory of the running worker processes "
    "(processes > 1)",
}

#: Counters that mean something failed; their sum is the stats line's ``errors``.
ERROR_COUNTERS = (
    "objects_failed",
    "bulk_failures",
    "sqs_receive_errors",
    "messages_undecodable",
    "checkpoint_errors",
    "dead_letter_errors",
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 86400)

#: Every histogram name: (what it measures, bucket upper bounds).
HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "bulk_latency_seconds": ("time from sending a _bulk request to its answer", _LATENCY_BUCKETS),
    "notification_lag_seconds": (
        "time from the S3 event (eventTime) to the object's notification being received",
        _LAG_BUCKETS,
    ),
}


class Histogram:
    """Observations counted into fixed buckets (upper bounds, ``le``), plus their sum."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Count ``value`` in the first bucket whose bound is ≥ it."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations ≤ bound)`` pairs, ending with ``(inf, count)``."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


class HistogramState(msgspec.Struct, frozen=True):
    """A :class:`Histogram`'s buckets and sum, as sent between processes."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float


class TelemetrySnapshot(msgspec.Struct, frozen=True):
    """Every counter, gauge and histogram of one :class:`Telemetry`, at one moment: what a
    worker process sends its supervisor, which sums them (:func:`merge_snapshots`)."""

    counters: dict[str, int] = {}
    gauges: dict[str, float] = {}
    histograms: dict[str, HistogramState] = {}


def merge_snapshots(snapshots: Sequence[TelemetrySnapshot]) -> TelemetrySnapshot:
    """The sum of ``snapshots``: counters, gauges and histogram buckets added up (a
    histogram whose bounds differ from the first one seen is left out)."""
    counters: Counter[str] = Counter()
    gauges: dict[str, float] = {}
    histograms: dict[str, HistogramState] = {}
    for snap in snapshots:
        counters.update(snap.counters)
        for name, value in snap.gauges.items():
            gauges[name] = gauges.get(name, 0.0) + value
        for name, h in snap.histograms.items():
            have = histograms.get(name)
            if have is None:
                histograms[name] = h
            elif have.bounds == h.bounds:
                counts = tuple(a + b for a, b in zip(have.counts, h.counts, strict=True))
                histograms[name] = HistogramState(have.bounds, counts, have.sum + h.sum)
    return TelemetrySnapshot(dict(counters), gauges, histograms)


class Telemetry:
    """Named counters plus contextual log lines."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.started = time.monotonic()
        self._gauges: dict[str, float | Callable[[], float]] = {}
        self._histograms: dict[str, Histogram] = {}
        self._last_stats = (self.started, 0)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        self.counters[name] += n

    def gauge(self, name: str, value: float | Callable[[], float]) -> None:
        """Set gauge ``name`` to ``value``, or to a function read whenever gauges are
        read (``telemetry.gauge("messages_in_flight", lambda: source.in_flight)``)."""
        self._gauges[name] = value

    def gauges(self) -> dict[str, float]:
        """The current value of every gauge (a failing gauge function is left out)."""
        out = {}
        for name, value in self._gauges.items():
            try:
                out[name] = float(value() if callable(value) else value)
            except Exception:  # an emit never raises
                continue
        return out

    def observe(self, name: str, value: float) -> None:
        """Count ``value`` into histogram ``name`` (buckets from :data:`HISTOGRAMS`)."""
        histogram = self._histograms.get(name)
        if histogram is None:
            bounds = HISTOGRAMS.get(name, ("", _LATENCY_BUCKETS))[1]
            histogram = self._histograms[name] = Histogram(bounds)
        histogram.observe(value)

    def notification_lag(self, event_time: str) -> None:
        """Observe ``notification_lag_seconds`` for an S3 event time such as
        ``2025-10-21T14:55:02.137Z`` (ignored when empty or unreadable)."""
        try:
            then = datetime.fromisoformat(event_time.replace("Z", "+00:00")).timestamp()
        except (ValueError, AttributeError):
            return
        self.observe("notification_lag_seconds", max(0.0, time.time() - then))

    def histograms(self) -> Mapping[str, Histogram]:
        """Every histogram observed so far (live objects: read, do not keep)."""
        return self._histograms

    def info(self, what: str, **context: Any) -> None:
        """Log a notable, expected thing."""
        log.info(what, extra={"context": context})

    def warning(self, what: str, **context: Any) -> None:
        """Log something a user should look at (bad input, a retry)."""
        log.warning(what, extra={"context": context})

    def error(self, what: str, **context: Any) -> None:
        """Log a failure that needs attention."""
        log.error(what, extra={"context": context})

    def debug(self, what: str, **context: Any) -> None:
        """Log a detail for troubleshooting."""
        log.debug(what, extra={"context": context})

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter."""
        return dict(self.counters)

    def export(self) -> TelemetrySnapshot:
        """Every counter, gauge and histogram, to send to another process."""
        histograms = {
            name: HistogramState(h.bounds, tuple(h.counts), h.sum)
            for name, h in self._histograms.items()
        }
        return TelemetrySnapshot(dict(self.counters), self.gauges(), histograms)

    def load(self, snapshot: TelemetrySnapshot) -> None:
        """Replace every counter, gauge and histogram with those of ``snapshot`` (the
        supervisor's view of its workers, which its ``/metrics`` serves)."""
        self.counters = Counter(snapshot.counters)
        self._gauges = dict(snapshot.gauges)
        histograms = {}
        for name, state in snapshot.histograms.items():
            h = histograms[name] = Histogram(state.bounds)
            h.counts = list(state.counts)
            h.sum = state.sum
            h.count = sum(state.counts)
        self._histograms = histograms

    def stats_line(self, in_flight: int) -> None:
        """Log the periodic stats line: the indexing rate since the previous line, the
        totals since start, messages in flight and the sum of :data:`ERROR_COUNTERS`."""
        c = self.counters
        now = time.monotonic()
        since, indexed_then = self._last_stats
        self._last_stats = (now, c["events_indexed"])
        if not callable(self._gauges.get("messages_in_flight")):
            self._gauges["messages_in_flight"] = in_flight
        self.info(
            "stats",
            events_per_s=round((c["events_indexed"] - indexed_then) / max(now - since, 1e-9), 1),
            events_indexed=c["events_indexed"],
            events_duplicate=c["events_duplicate"],
            events_rejected=c["events_rejected"],
            parse_failed=c["events_parse_failed"],
            objects_done=c["objects_done"],
            objects_failed=c["objects_failed"],
            messages_received=c["messages_received"],
            messages_deleted=c["messages_deleted"],
            in_flight=in_flight,
            errors=sum(c[name] for name in ERROR_COUNTERS),
        )


#: syslog priorities that journald reads from a ``<N>`` line prefix (sd-daemon.h).
_PRIORITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}


class _TextFormatter(logging.Formatter):
    def __init__(self, journal: bool = False) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        context = getattr(record, "context", None) or {}
        if self.journal:
            # journald stamps the time itself; the prefix sets the entry's priority.
            parts = [f"<{_PRIORITY.get(record.levelname, 6)}>{record.levelname}"]
        else:
            parts = [
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                record.levelname,
            ]
        parts.append(record.getMessage())
        parts += [f"{k}={_text(v)}" for k, v in context.items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        document.update(getattr(record, "context", None) or {})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(document, enc_hook=str).decode()


def _text(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "='):
        return msgspec.json.encode(text).decode()
    return text


def stderr_is_journal(environ: Mapping[str, str] | None = None) -> bool:
    """True when stderr is the journald stream that ``JOURNAL_STREAM`` names.

    systemd sets ``JOURNAL_STREAM=device:inode`` for a service whose output goes to
    the journal; comparing it with stderr's own device and inode tells a child whose
    stderr was redirected elsewhere (which inherits the variable) from the service.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        stat = os.fstat(sys.stderr.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):
        return False


class _Tag(logging.Filter):
    def __init__(self, context: dict[str, Any]) -> None:
        super().__init__()
        self.tag = context

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = {**self.tag, **(getattr(record, "context", None) or {})}
        return True


def tag_logs(**context: Any) -> None:
    """Add ``context`` (``worker=1``) first to every log line s3lb writes from now on."""
    for handler in logging.getLogger("s3lb").handlers:
        handler.addFilter(_Tag(context))


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Send s3lb's log lines to stderr at ``level`` in ``fmt`` (``text`` or ``json``).
    Text lines under journald carry a priority prefix instead of a time."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter(journal=stderr_is_journal()))
    root = logging.getLogger("s3lb")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
