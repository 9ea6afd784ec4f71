"""``s3lb run``: the pipeline under signal handling.

SIGTERM or SIGINT stops receiving at once and lets in-flight work drain for up to
``shutdown_timeout``; a second signal cancels the drain (what is unfinished is
released to the queue either way). The exit status is 0 after a signal.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import trio

from s3lb.aws._session import AwsSession
from s3lb.config import Config
from s3lb.pipeline._wiring import run_pipeline
from s3lb.telemetry import Telemetry

__all__ = ["serve"]


async def serve(
    config: Config,
    telemetry: Telemetry,
    *,
    stop: trio.Event | None = None,
    on_ready: Callable[[], None] = lambda: None,
    session: AwsSession | None = None,
) -> int:
    """Run the daemon until a signal (or ``stop``) ends it; return the exit status."""
    stop = trio.Event() if stop is None else stop
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, stop, nursery.cancel_scope, telemetry)
        await run_pipeline(config, telemetry, stop, on_ready, session=session)
        nursery.cancel_scope.cancel()
    telemetry.info("s3lb stopped")
    return 0


async def _watch_signals(stop: trio.Event, scope: trio.CancelScope, telemetry: Telemetry) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if not stop.is_set():
                telemetry.info("signal received; stopping", signal=name)
                stop.set()
            else:
                telemetry.warning("second signal; exiting without waiting", signal=name)
                scope.cancel()
