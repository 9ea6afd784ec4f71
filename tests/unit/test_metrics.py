"""The Prometheus endpoint: what :class:`Telemetry` holds is what a scraper reads, and
the tiny HTTP server answers (or refuses) any request without disturbing the daemon."""

from __future__ import annotations

import re
import time

import httpx
import pytest
import trio
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from s3lb import __version__
from s3lb.config import loads
from s3lb.errors import ConfigError
from s3lb.metrics import make_registry, parse_listen, serve_metrics
from s3lb.telemetry import COUNTERS, GAUGES, HISTOGRAMS, Histogram, Telemetry
from tests.paths import REPO


def samples(telemetry: Telemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, by (name, sorted labels)."""
    text = generate_latest(make_registry(telemetry)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_listen_addresses_are_host_port_with_ipv6_in_brackets() -> None:
    assert parse_listen("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_listen("[::1]:9108") == ("::1", 9108)
    assert parse_listen(":9108") == ("", 9108)
    assert parse_listen("localhost:0") == ("localhost", 0)
    for bad in ("9108", "host:", "host:http", "::1:9108", "h:70000"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def test_a_bad_metrics_listen_is_a_configuration_error_naming_metrics() -> None:
    with pytest.raises(ConfigError, match=r"^metrics: invalid listen address"):
        loads('metrics.listen: "9108"\noutput.file.path: "-"')
    config, warnings = loads('metrics: {listen: "[::1]:9108"}\noutput.file.path: "-"')
    assert config.metrics.listen == "[::1]:9108" and warnings == []
    assert loads('output.file.path: "-"')[0].metrics.listen == ""


def test_every_counter_is_exposed_as_a_total_documented_ones_from_zero() -> None:
    telemetry = Telemetry()
    telemetry.count("events_indexed", 41)
    telemetry.count("events_indexed")
    telemetry.count("messages_deleted", 3)
    telemetry.count("something_new")
    got = samples(telemetry)
    assert got[("s3lb_events_indexed_total", ())] == 42
    assert got[("s3lb_messages_deleted_total", ())] == 3
    assert got[("s3lb_something_new_total", ())] == 1
    for name in COUNTERS:
        assert (f"s3lb_{name}_total", ()) in got
    assert got[("s3lb_objects_failed_total", ())] == 0
    assert got[("s3lb_build_info", (("version", __version__),))] == 1
    assert ("process_cpu_seconds_total", ()) in got


def test_gauges_are_read_at_scrape_time_and_a_failing_one_is_left_out() -> None:
    telemetry = Telemetry()
    in_flight = [3]
    telemetry.gauge("messages_in_flight", lambda: in_flight[0])
    telemetry.gauge("objects_in_flight", 2)
    telemetry.gauge("broken", lambda: 1 / 0)
    assert samples(telemetry)[("s3lb_messages_in_flight", ())] == 3
    in_flight[0] = 7
    got = samples(telemetry)
    assert got[("s3lb_messages_in_flight", ())] == 7
    assert got[("s3lb_objects_in_flight", ())] == 2
    assert ("s3lb_broken", ()) not in got
    assert set(GAUGES) >= {"messages_in_flight", "objects_in_flight"}


def test_the_stats_line_sets_messages_in_flight_unless_a_live_gauge_is_registered() -> None:
    telemetry = Telemetry()
    telemetry.stats_line(in_flight=5)
    assert telemetry.gauges()["messages_in_flight"] == 5
    telemetry.gauge("messages_in_flight", lambda: 9)
    telemetry.stats_line(in_flight=5)
    assert telemetry.gauges()["messages_in_flight"] == 9


def test_histograms_are_cumulative_with_sum_and_count() -> None:
    histogram = Histogram([0.1, 1, 10])
    for value in (0.05, 0.1, 0.5, 3, 100):
        histogram.observe(value)
    assert histogram.cumulative() == [(0.1, 2), (1, 3), (10, 4), (float("inf"), 5)]
    telemetry = Telemetry()
    telemetry.observe("bulk_latency_seconds", 0.02)
    telemetry.observe("bulk_latency_seconds", 3.0)
    got = samples(telemetry)
    assert got[("s3lb_bulk_latency_seconds_count", ())] == 2
    assert got[("s3lb_bulk_latency_seconds_sum", ())] == pytest.approx(3.02)
    assert got[("s3lb_bulk_latency_seconds_bucket", (("le", "0.025"),))] == 1
    assert got[("s3lb_bulk_latency_seconds_bucket", (("le", "+Inf"),))] == 2
    # documented but never observed: present, empty
    assert got[("s3lb_notification_lag_seconds_count", ())] == 0
    assert set(HISTOGRAMS) == {"bulk_latency_seconds", "notification_lag_seconds"}


def test_notification_lag_is_now_minus_the_s3_event_time_and_ignores_junk() -> None:
    telemetry = Telemetry()
    ten_minutes_ago = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 600))
    telemetry.notification_lag(ten_minutes_ago)
    telemetry.notification_lag("")
    telemetry.notification_lag("yesterday")
    lag = telemetry.histograms()["notification_lag_seconds"]
    assert lag.count == 1 and 590 < lag.sum < 700


def test_the_stats_line_gives_the_rate_since_the_previous_line_and_an_error_total(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    telemetry = Telemetry()
    lines: list[dict[str, object]] = []
    monkeypatch.setattr(telemetry, "info", lambda what, **context: lines.append(context))
    telemetry.count("events_indexed", 500)
    now[0] += 10
    telemetry.count("objects_failed", 2)
    telemetry.count("bulk_failures", 3)
    telemetry.stats_line(in_flight=4)
    now[0] += 10
    telemetry.count("events_indexed", 100)
    telemetry.stats_line(in_flight=1)
    first, second = lines
    assert first["events_per_s"] == 50.0 and first["errors"] == 5 and first["in_flight"] == 4
    assert second["events_per_s"] == 10.0 and second["events_indexed"] == 600


async def get(url: str, method: str = "GET", **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.request(method, url, headers=headers)


async def raw(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        out = b""
        while chunk := await stream.receive_some(65536):
            out += chunk
    return out


async def test_the_endpoint_serves_metrics_and_refuses_everything_else() -> None:
    telemetry = Telemetry()
    telemetry.count("events_indexed", 7)
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(serve_metrics, telemetry, "127.0.0.1:0")
        base = f"http://{host}:{port}"
        with trio.fail_after(10):
            response = await get(base + "/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert "s3lb_events_indexed_total 7.0" in response.text

            telemetry.count("events_indexed")
            open_metrics = await get(base + "/metrics?x=1", accept="application/openmetrics-text")
            assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
            assert "s3lb_events_indexed_total 8.0" in open_metrics.text
            assert open_metrics.text.endswith("# EOF\n")

            head = await get(base + "/metrics", "HEAD")
            assert head.status_code == 200 and head.content == b""
            assert (await get(base + "/")).status_code == 200
            assert (await get(base + "/nope")).status_code == 404
            post = await get(base + "/metrics", "POST")
            assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
            assert (await raw(port, b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
            too_big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n"
            assert (await raw(port, too_big)).startswith(b"HTTP/1.1 431 ")
            # A client that connects and says nothing holds only its own connection.
            idle = await trio.open_tcp_stream("127.0.0.1", port)
            assert (await get(base + "/metrics")).status_code == 200
            await idle.aclose()
            # One that leaves mid-request costs nothing either.
            await (await trio.open_tcp_stream("127.0.0.1", port)).aclose()
            assert (await get(base + "/metrics")).status_code == 200
        nursery.cancel_scope.cancel()


async def test_an_address_in_use_raises_oserror_from_start() -> None:
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(serve_metrics, Telemetry(), "127.0.0.1:0")
        with pytest.raises(OSError):
            await nursery.start(serve_metrics, Telemetry(), f"127.0.0.1:{port}")
        nursery.cancel_scope.cancel()


def test_the_operations_page_lists_every_documented_metric() -> None:
    readme = (REPO / "docs" / "operations.md").read_text()
    missing = [f"s3lb_{n}_total" for n in COUNTERS if f"`s3lb_{n}_total`" not in readme]
    missing += [f"s3lb_{n}" for n in (*GAUGES, *HISTOGRAMS) if f"`s3lb_{n}`" not in readme]
    assert missing == []


def test_every_counter_the_code_counts_is_documented() -> None:
    counted = {
        name
        for path in (REPO / "s3lb").rglob("*.py")
        for name in re.findall(r'\.count\(\s*"([a-z_]+)"', path.read_text())
    }
    counted -= {"parse_failed"}  # an ObjectTracker's own tally, not a telemetry counter
    assert sorted(counted - set(COUNTERS)) == []
