"""The ``s3lb`` command line: ``run``, ``demo``, ``parse`` … and their exit codes.

Exit codes: 0 success; 1 a command's own failure (e.g. parse failures); 2 a
configuration or usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from s3lb import __version__
from s3lb.config import Config, load
from s3lb.errors import CheckpointError, ConfigError, S3lbError
from s3lb.telemetry import Telemetry, configure_logging

__all__ = ["main"]

#: Modules that each register one subcommand with ``add_parser(commands)``.
_COMMAND_MODULES = [
    "s3lb.cli.parse",
    "s3lb.cli.setup",
    "s3lb.cli.replay",
    "s3lb.cli.check",
    "s3lb.cli.state",
    "s3lb.cli.import_",
]


def _load_config(path: str, telemetry: Telemetry) -> Config:
    config, warnings = load(path)
    for warning in warnings:
        telemetry.warning("configuration: " + warning, file=path)
    return config


def run_trio(fn: Callable[..., Awaitable[int]], *args: Any) -> int:
    """``trio.run``, with s3lb's own errors unwrapped from exception groups so that
    :func:`main` can report them plainly."""
    try:
        return trio.run(fn, *args)
    except BaseExceptionGroup as group:
        ours, _ = group.split(S3lbError)
        if ours is None:
            raise
        while isinstance(ours, BaseExceptionGroup):
            ours = ours.exceptions[0]
        raise ours from group


def _cmd_run(args: argparse.Namespace) -> int:
    from s3lb.cli.run import serve

    telemetry = Telemetry()
    config = _load_config(args.config, telemetry)
    return run_trio(serve, config, telemetry)


def _cmd_demo(args: argparse.Namespace) -> int:
    from s3lb.cli.demo import run_demo

    return run_demo(args.output)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3lb", description="Ship AWS logs from S3 to Elasticsearch/OpenSearch."
    )
    parser.add_argument("--version", action="version", version=f"s3lb {__version__}")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-format", default="text", choices=["text", "json"])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="poll SQS and ship notified objects (the daemon)")
    run.add_argument("-c", "--config", default="s3lb.yml", help="configuration file")
    run.set_defaults(func=_cmd_run)

    demo = commands.add_parser(
        "demo", help="run the daemon end to end on a local S3/SQS (moto) with sample logs"
    )
    demo.add_argument("-o", "--output", default="-", help="NDJSON output file (default stdout)")
    demo.set_defaults(func=_cmd_demo)

    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``s3lb`` console script."""
    args = _parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"s3lb: configuration error: {exc}", file=sys.stderr)
        return 2
    except CheckpointError as exc:
        print(f"s3lb: checkpoint store: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
