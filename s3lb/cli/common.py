"""What every command shares: exit codes, the common options, loading the
configuration, durations, secret masking, and trio with readable errors.

The configuration loader and trio are imported when first used: ``s3lb parse`` needs
neither, and starts faster without them.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeVar

from s3lb.errors import S3lbError

if TYPE_CHECKING:
    from s3lb.config import Config

__all__ = [
    "COMMON_DEFAULTS",
    "DEFAULT_CONFIG",
    "Exit",
    "add_common_options",
    "duration",
    "load_config",
    "redact_text",
    "run_trio",
    "unwrap",
]


class Exit(IntEnum):
    """The exit statuses of every command."""

    OK = 0
    #: The command did its job and found a failure (a check, an object, a record).
    FAILED = 1
    #: Invalid options or configuration: nothing was done.
    USAGE = 2
    #: An unexpected exception: a bug in s3lb (``EX_SOFTWARE``).
    BUG = 70
    #: Ctrl-C (128 + SIGINT).
    INTERRUPTED = 130
    #: The reader of stdout went away, as ``| head`` does (128 + SIGPIPE).
    BROKEN_PIPE = 141


DEFAULT_CONFIG = "./s3lb.yml"
#: The common options' values when not given (their parsers leave them unset, so a
#: subcommand cannot overwrite what was typed before it).
COMMON_DEFAULTS = {"config": DEFAULT_CONFIG, "log_level": "info", "log_format": "text"}


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``-c``, ``--log-level`` and ``--log-format``, accepted before or after any
    subcommand."""
    group = parser.add_argument_group("common options (before or after the command)")
    group.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help=f"configuration file (default: {DEFAULT_CONFIG})",
    )
    group.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        choices=["debug", "info", "warning", "error"],
        help="log lines of this level and above, on stderr (default: info); debug also "
        "shows the traceback of an error",
    )
    group.add_argument(
        "--log-format",
        default=argparse.SUPPRESS,
        choices=["text", "json"],
        help="log lines as text or one JSON object each (default: text)",
    )


def duration(text: str) -> float:
    """An argparse type: ``5s``, ``1m``, ``250ms``, ``2h``, ``1d`` or seconds."""
    from s3lb.config import parse_duration

    try:
        return float(parse_duration(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 30s, 5m, 2h or 1d, got {text!r}"
        ) from None


def load_config(
    args: argparse.Namespace, on_warning: Callable[[str], None] | None = None
) -> Config:
    """Load ``args.config``; each warning goes to ``on_warning``, or is logged.

    Raises:
        ConfigError: the file cannot be read or is invalid.
    """
    from s3lb.config import load
    from s3lb.telemetry import Telemetry

    config, warnings = load(args.config)
    for warning in warnings:
        if on_warning is None:
            Telemetry().warning("configuration: " + warning, file=args.config)
        else:
            on_warning(warning)
    return config


# ``scheme://user:password@``: the password is masked, the rest kept.
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*):[^\s/@]*@")


def redact_text(text: str) -> str:
    """``text`` with the password of every URL in it masked (``user:***@host``)."""
    return _USERINFO.sub(r"\1:***@", text)


#: What :func:`unwrap` takes out of an exception group, by preference: s3lb's own
#: errors, an interruption, then an environment problem (a full disk, a closed pipe).
_PLAIN: tuple[type[BaseException], ...] = (S3lbError, KeyboardInterrupt, OSError)


def unwrap(error: BaseException) -> BaseException:
    """The exception to report for ``error``: the first of :data:`_PLAIN` found in an
    exception group, else ``error`` itself."""
    if not isinstance(error, BaseExceptionGroup):
        return error
    for kind in _PLAIN:
        group, _ = error.split(kind)
        found: BaseException | None = group
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        if found is not None:
            return found
    return error


_T = TypeVar("_T")


def run_trio(fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
    """``trio.run``, with the error to report taken out of exception groups."""
    import trio

    try:
        return trio.run(fn, *args)
    except BaseExceptionGroup as group:
        plain = unwrap(group)
        if plain is group:
            raise
        raise plain from group
