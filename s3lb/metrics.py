"""Prometheus metrics of ``s3lb run``, served by a tiny HTTP/1.1 endpoint in the trio loop.

With ``metrics.listen: 127.0.0.1:9108`` in the configuration, ``GET /metrics`` answers
in Prometheus' text format (or OpenMetrics when the scraper asks for it), as written by
prometheus-client from :class:`~s3lb.telemetry.Telemetry`:

- every counter ``x`` (see :data:`~s3lb.telemetry.COUNTERS`) as ``s3lb_x_total``;
- every gauge ``x`` (:data:`~s3lb.telemetry.GAUGES`) as ``s3lb_x``;
- every histogram ``x`` (:data:`~s3lb.telemetry.HISTOGRAMS`) as ``s3lb_x_bucket``,
  ``s3lb_x_sum`` and ``s3lb_x_count``;
- ``s3lb_build_info{version="…"} 1`` and prometheus-client's ``process_*`` metrics
  (CPU, memory, open files, start time).

The server reads one request per connection (at most 8 KiB of head, within 10 s), answers
and closes. It never raises into the daemon: a broken or slow client costs its own
connection only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import trio
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from s3lb import __version__
from s3lb.telemetry import COUNTERS, GAUGES, HISTOGRAMS, Telemetry

__all__ = ["TelemetryCollector", "make_registry", "parse_listen", "serve_metrics"]

NAMESPACE = "s3lb"
_MAX_HEAD = 8192
_READ_TIMEOUT = 10.0


def parse_listen(value: str) -> tuple[str, int]:
    """``127.0.0.1:9108`` → ``("127.0.0.1", 9108)``; ``[::1]:9108`` and ``:9108`` (every
    interface) too. Port 0 picks a free port. Raises ValueError otherwise."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9108, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, as in [::1]:9108, got {value!r}")
    return host, int(port)


class TelemetryCollector:
    """A prometheus-client collector reading :class:`Telemetry` at each scrape."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def collect(self) -> Iterable[Metric]:
        """Every counter, gauge and histogram, documented ones even before their first use."""
        info = GaugeMetricFamily(
            f"{NAMESPACE}_build_info", "s3lb's version (always 1)", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info

        counters = self.telemetry.snapshot()
        for name in sorted(set(COUNTERS) | set(counters)):
            yield CounterMetricFamily(
                f"{NAMESPACE}_{name}", COUNTERS.get(name, name), value=counters.get(name, 0)
            )

        gauges = self.telemetry.gauges()
        for name in sorted(set(GAUGES) | set(gauges)):
            if name in gauges:
                yield GaugeMetricFamily(
                    f"{NAMESPACE}_{name}", GAUGES.get(name, name), value=gauges[name]
                )

        histograms = self.telemetry.histograms()
        for name in sorted(set(HISTOGRAMS) | set(histograms)):
            documentation = HISTOGRAMS.get(name, (name, ()))[0]
            family = HistogramMetricFamily(f"{NAMESPACE}_{name}", documentation)
            histogram = histograms.get(name)
            if histogram is None:
                bounds = HISTOGRAMS[name][1]
                buckets = [(_le(b), 0) for b in (*bounds, math.inf)]
                family.add_metric([], buckets, 0.0)
            else:
                buckets = [(_le(b), n) for b, n in histogram.cumulative()]
                family.add_metric([], buckets, histogram.sum)
            yield family


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def make_registry(telemetry: Telemetry) -> CollectorRegistry:
    """A registry of s3lb's metrics plus the process and platform collectors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(telemetry))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


async def serve_metrics(
    telemetry: Telemetry,
    listen: str,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/metrics`` on ``listen`` until cancelled; ``task_status.started`` gets the
    bound (host, port). Raises OSError when the address cannot be bound."""
    host, port = parse_listen(listen)
    listeners = await trio.open_tcp_listeners(port, host=host or None)
    bound = listeners[0].socket.getsockname()
    registry = make_registry(telemetry)

    async def handler(stream: trio.SocketStream) -> None:
        await _handle(stream, registry, telemetry)

    task_status.started((str(bound[0]), int(bound[1])))
    await trio.serve_listeners(handler, listeners)


async def _handle(stream: trio.SocketStream, registry: CollectorRegistry, telemetry: Any) -> None:
    try:
        with trio.move_on_after(_READ_TIMEOUT):
            head = await _read_head(stream)
            if head is not None:
                await stream.send_all(_respond(head, registry))
                await _linger(stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    except Exception as exc:  # the endpoint must never take the daemon down
        telemetry.warning("metrics request failed", reason=f"{type(exc).__name__}: {exc}")
    finally:
        with trio.move_on_after(1):
            await stream.aclose()


async def _linger(stream: trio.SocketStream) -> None:
    """Half-close, then read what the client still sends (a body we did not want), so
    that closing does not reset the connection before it reads the answer."""
    await stream.send_eof()
    with trio.move_on_after(1):
        for _ in range(16):
            if not await stream.receive_some(65536):
                return


async def _read_head(stream: trio.SocketStream) -> bytes | None:
    """The request head; ``b""`` when it is too large; None when the client left first."""
    data = b""
    while True:
        end = min((i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0), default=-1)
        if end >= 0:
            return data[:end] if end <= _MAX_HEAD else b""
        if len(data) > _MAX_HEAD:
            return b""
        chunk = await stream.receive_some(4096)
        if not chunk:
            return None
        data += chunk


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
}


def _respond(head: bytes, registry: CollectorRegistry) -> bytes:
    """The whole HTTP response to a request whose head is ``head``."""
    if not head:
        return _response(431, b"request head too large\n")
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return _response(400, b"bad request\n")
    method, target, _version = parts
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    path = target.split("?", 1)[0]
    if method not in ("GET", "HEAD"):
        return _response(405, b"only GET and HEAD\n", extra={"Allow": "GET, HEAD"})
    if path == "/metrics":
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        body = encoder(registry)
    elif path == "/":
        body, content_type = b"s3lb: metrics at /metrics\n", "text/plain; charset=utf-8"
    else:
        return _response(404, b"not found: try /metrics\n")
    return _response(200, body, content_type, head_only=method == "HEAD")


def _response(
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    head_only: bool = False,
    extra: dict[str, str] | None = None,
) -> bytes:
    headers = {
        "Content-Type": content_type,
        "Content-Length": str(len(body)),
        "Connection": "close",
        **(extra or {}),
    }
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)
