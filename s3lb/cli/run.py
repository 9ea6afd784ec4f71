"""``s3lb run``: the daemon: poll the queues, ship each notified object, until a signal.

SIGTERM or SIGINT stops receiving at once and lets in-flight work drain for up to
``shutdown_timeout``; a second signal cancels the drain (what is unfinished is
released to the queue either way). The exit status is 0 after a signal.

Under systemd (``Type=notify``) the daemon sends ``READY=1`` once its pollers run,
``STOPPING=1`` when the drain begins, ``WATCHDOG=1`` at half of ``WatchdogSec`` from
the event loop itself, and a ``STATUS=`` line every ``stats_interval``. With
``metrics.listen`` set, a Prometheus endpoint is served before polling starts.

With ``processes`` above 1 this process is a supervisor of that many worker processes
(:mod:`s3lb.cli.supervisor`), each running the pipeline; the service still sends one
``READY=1`` and serves one ``/metrics``.
"""

from __future__ import annotations

import argparse
import functools
import signal
from collections.abc import Callable
from typing import Any

import trio

from s3lb.aws.session import AwsSession
from s3lb.checkpoint.lock import lock_state_dir
from s3lb.cli.common import load_config, run_trio
from s3lb.cli.processes import as_worker, process_count
from s3lb.cli.systemd import Notifier, run_watchdog
from s3lb.cli.workers import WorkerLink
from s3lb.config import Config
from s3lb.errors import ConfigError
from s3lb.pipeline.wiring import Clients, run_pipeline
from s3lb.telemetry import Telemetry, tag_logs

__all__ = ["add_parser", "serve"]


def add_parser(commands: Any) -> None:
    """Register ``run`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "run", help="poll SQS and ship the notified objects (the daemon)", description=__doc__
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    telemetry = Telemetry()
    link = WorkerLink.from_environ()
    if link is not None:
        return _run_worker(args, link, telemetry)
    config = load_config(args)
    count, why = process_count(config)
    # One daemon per state_dir: this process holds the lock for its lifetime, and its
    # worker processes inherit it (s3lb/checkpoint/lock.py).
    # Said once the store opened: a refusal before that stays one line.
    said = f"worker processes: {count} ({why})"
    with lock_state_dir(config.settings.state_dir) as lock:
        if count == 1:
            return run_trio(
                functools.partial(serve, on_ready=lambda: telemetry.info(said)), config, telemetry
            )
        from s3lb.cli.supervisor import supervise

        run = functools.partial(supervise, lock=lock, said=said)
        return run_trio(run, config, telemetry, count, _worker_argv(args))


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """The command line of a worker: this one's common options, then ``run``."""
    return [
        "-c",
        args.config,
        "--log-level",
        args.log_level,
        "--log-format",
        args.log_format,
        "run",
    ]


def _run_worker(args: argparse.Namespace, link: WorkerLink, telemetry: Telemetry) -> int:
    """A worker of a supervisor: the pipeline, reporting to it, on its orders. The
    supervisor checked the store: a worker neither checks it again nor moves it aside."""
    tag_logs(worker=link.index)
    config = load_config(args, on_warning=lambda _w: None)  # the supervisor logged them

    def work(clients: Clients) -> int:
        notifier = Notifier(environ={})
        worker = functools.partial(serve, notifier=notifier, link=link, clients=clients)
        return run_trio(worker, config, telemetry)

    return as_worker(config, link, telemetry, work)


async def serve(
    config: Config,
    telemetry: Telemetry,
    *,
    stop: trio.Event | None = None,
    on_ready: Callable[[], None] = lambda: None,
    session: AwsSession | None = None,
    notifier: Notifier | None = None,
    link: WorkerLink | None = None,
    clients: Clients | None = None,
) -> int:
    """Run the daemon until a signal (or ``stop``) ends it; return the exit status.

    ``notifier`` defaults to one reading ``NOTIFY_SOCKET`` from the environment.
    Raises ConfigError when the metrics address cannot be bound. A worker process
    (``link``) obeys its supervisor instead of signals, reports to it, and serves no
    metrics of its own.
    """
    stop = trio.Event() if stop is None else stop
    notifier = Notifier() if notifier is None else notifier

    def ready() -> None:
        notifier.ready(status=_status(telemetry, stopping=False))
        if link is not None:
            link.ready()
        on_ready()

    # Trio restores the handlers it found when its receiver closes: with these, a signal
    # arriving after the drain, or before the receiver is open, cannot kill the process.
    for signum in (*_STOP_SIGNALS, *_NOTED_SIGNALS):
        signal.signal(signum, signal.SIG_IGN)
    try:
        async with trio.open_nursery() as nursery:
            if link is None:
                nursery.start_soon(_watch_signals, stop, nursery.cancel_scope, telemetry)
            else:
                nursery.start_soon(link.watch, stop, nursery.cancel_scope, telemetry)
                nursery.start_soon(link.report, telemetry)
            nursery.start_soon(run_watchdog, notifier)
            nursery.start_soon(_announce_stop, stop, notifier, telemetry)
            if notifier.enabled:
                nursery.start_soon(
                    _report_status, notifier, telemetry, stop, config.settings.stats_interval
                )
            if config.metrics.listen and link is None:
                await _start_metrics(nursery, telemetry, config.metrics.listen)
            await run_pipeline(
                config, telemetry, stop, ready, session=session, clients=clients or Clients()
            )
            nursery.cancel_scope.cancel()
    finally:
        notifier.close()
    telemetry.info("s3lb stopped")
    return 0


async def _start_metrics(nursery: trio.Nursery, telemetry: Telemetry, listen: str) -> None:
    from s3lb.metrics import serve_metrics

    try:
        host, port = await nursery.start(serve_metrics, telemetry, listen)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {listen}: {exc.strerror or exc}", "metrics.listen"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    telemetry.info("metrics endpoint listening", url=f"http://{shown}:{port}/metrics")


#: Signals that drain and stop the daemon (a second one stops it without waiting).
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Signals that other daemons use for log reopening or reloads: s3lb logs to stderr
#: (journald), so there is no file to reopen, and a configuration change needs a
#: restart. They are logged, answered with a stats line, and otherwise ignored, never
#: the default action (which would kill the process without a drain).
_NOTED_SIGNALS = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


async def _watch_signals(stop: trio.Event, scope: trio.CancelScope, telemetry: Telemetry) -> None:
    with trio.open_signal_receiver(*_STOP_SIGNALS, *_NOTED_SIGNALS) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum in _NOTED_SIGNALS:
                telemetry.info(
                    "signal received; ignored (logs go to stderr, a configuration change"
                    " needs a restart)",
                    signal=name,
                )
                telemetry.stats_line(int(telemetry.gauges().get("messages_in_flight", 0)))
            elif not stop.is_set():
                telemetry.info("signal received; stopping", signal=name)
                stop.set()
            else:
                telemetry.warning("second signal; exiting without waiting", signal=name)
                scope.cancel()


async def _announce_stop(stop: trio.Event, notifier: Notifier, telemetry: Telemetry) -> None:
    """``STOPPING=1`` as soon as the drain begins, whatever set ``stop``."""
    await stop.wait()
    notifier.stopping(status=_status(telemetry, stopping=True))


async def _report_status(
    notifier: Notifier, telemetry: Telemetry, stop: trio.Event, interval: float
) -> None:
    while True:
        await trio.sleep(max(interval, 1.0))
        notifier.status(_status(telemetry, stopping=stop.is_set()))


def _status(telemetry: Telemetry, *, stopping: bool) -> str:
    """The one line ``systemctl status`` shows."""
    c = telemetry.counters
    in_flight = int(telemetry.gauges().get("messages_in_flight", 0))
    state = "draining" if stopping else "polling"
    return (
        f"{state}: {c['events_indexed']} events indexed, {c['messages_deleted']} messages"
        f" deleted, {in_flight} in flight, {c['objects_failed']} objects failed"
    )
