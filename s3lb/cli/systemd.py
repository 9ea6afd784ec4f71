"""systemd's notify protocol (``sd_notify``), with no dependency.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET``, a unix datagram socket (a path,
or ``@name`` in the abstract namespace). The service sends newline-separated
``KEY=value`` assignments to it: ``READY=1`` once it works (s3lb: when it polls),
``STOPPING=1`` when it begins to shut down, ``WATCHDOG=1`` at least every
``WATCHDOG_USEC`` microseconds when the unit sets ``WatchdogSec=``, and ``STATUS=…``,
the line ``systemctl status`` shows. Without ``NOTIFY_SOCKET`` every call is a no-op.
Sending never raises and never blocks: a datagram that cannot be sent is dropped.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import trio

__all__ = ["Notifier", "run_watchdog"]


class Notifier:
    """Sends notifications to systemd when it asked for them."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # Abstract-namespace addresses are written with a leading "@".
        self.address: str | bytes | None = None
        if address.startswith("@"):
            self.address = b"\0" + address[1:].encode()
        elif address.startswith("/"):
            self.address = address
        self._watchdog_usec = _int(env.get("WATCHDOG_USEC"))
        self._watchdog_pid = _int(env.get("WATCHDOG_PID"))
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """True when systemd (or a test) listens for notifications."""
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half of ``WatchdogSec``), or None when
        no watchdog is set for this process."""
        if not self._watchdog_usec:
            return None
        if self._watchdog_pid and self._watchdog_pid != os.getpid():
            return None  # set for another process (we were started by one)
        return self._watchdog_usec / 2e6

    def notify(self, **fields: object) -> bool:
        """Send ``KEY=value`` lines (``notify(READY=1, STATUS="polling")``); return
        whether the datagram was sent."""
        if self.address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            if self._socket is None:
                kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                self._socket = socket.socket(socket.AF_UNIX, kind)
            self._socket.sendto(message.encode(), self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str = "") -> bool:
        """``READY=1``: start-up is over (``systemctl start`` returns)."""
        return self.notify(READY=1, **({"STATUS": status} if status else {}))

    def stopping(self, status: str = "") -> bool:
        """``STOPPING=1``: shutting down (draining)."""
        return self.notify(STOPPING=1, **({"STATUS": status} if status else {}))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the event loop is alive."""
        return self.notify(WATCHDOG=1)

    def status(self, text: str) -> bool:
        """``STATUS=…``: a one-line state for ``systemctl status``."""
        return self.notify(STATUS=text)

    def close(self) -> None:
        """Close the socket (a later call opens it again)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


async def run_watchdog(notifier: Notifier) -> None:
    """Ping systemd's watchdog from the event loop until cancelled; return at once when
    no watchdog is set. A loop that stops running stops the pings, and systemd
    restarts the service."""
    interval = notifier.watchdog_interval
    if interval is None or not notifier.enabled:
        return
    while True:
        notifier.watchdog()
        await trio.sleep(interval)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
