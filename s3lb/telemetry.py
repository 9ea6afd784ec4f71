"""Counters and log lines: every notable thing s3lb does is said here, once.

:class:`Telemetry` counts named events and logs one line per notable thing with its
context (queue, message id, bucket, key…). Log lines are plain ``what key=value`` text
on stderr by default, or JSON objects with ``--log-format json``. Emitting never
raises and never blocks on anything but stderr.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from typing import Any

import msgspec

__all__ = ["Telemetry", "configure_logging"]

log = logging.getLogger("s3lb")


class Telemetry:
    """Named counters plus contextual log lines."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.started = time.monotonic()

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        self.counters[name] += n

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

    def stats_line(self, in_flight: int) -> None:
        """Log the periodic stats line."""
        c = self.counters
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self.info(
            "stats",
            events_per_s=round(c["events_indexed"] / elapsed, 1),
            events_indexed=c["events_indexed"],
            events_duplicate=c["events_duplicate"],
            events_rejected=c["events_rejected"],
            parse_failed=c["events_parse_failed"],
            objects_done=c["objects_done"],
            objects_failed=c["objects_failed"],
            messages_deleted=c["messages_deleted"],
            in_flight=in_flight,
        )


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = getattr(record, "context", None) or {}
        parts = [
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            record.levelname,
            record.getMessage(),
        ]
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


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Send s3lb's log lines to stderr at ``level`` in ``fmt`` (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger("s3lb")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
