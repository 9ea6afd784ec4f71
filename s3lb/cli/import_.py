"""``s3lb import``: process objects already in S3 (the ``type: s3`` inputs), resumably.

``s3lb import -c CONFIG [--since T] [--to T] [--input NAME] [--dry-run] [--enqueue URL]``

Each bucket URL of each ``type: s3`` input (``buckets: [s3://bucket/prefix]``) is listed
and every object whose LastModified is in ``[since, to)`` is read, parsed and indexed by
the same readers, output, ``_id`` s and checkpoints as ``s3lb run``: an object one of
them finished is not sent again by the other. Times are ISO 8601 (``2024-01-31``,
``2018-10-15T01:00``, ``2024-01-31T12:00:00+02:00``; no zone means UTC); the flags
override the input's ``since`` and ``to``.

The listing cursor of each job is kept in the checkpoint store: after a crash or
Ctrl-C, the same command continues where it stopped, and once complete it sends
nothing. ``--enqueue QUEUE_URL`` sends one S3 notification per object to a queue
instead, for a fleet of ``s3lb run`` daemons to share the work.

Exit status: 0 when every object in the window was processed, 1 when some failed (they
are named, and retried by the next run), 2 for a configuration error, 128 + the signal
number when interrupted.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    """Register ``import`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "import",
        help="backfill objects already in S3 (type: s3 inputs), resumably",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--since", default=None, help="first LastModified to take, inclusive (ISO 8601)"
    )
    parser.add_argument("--to", default=None, help="LastModified to stop at, exclusive")
    parser.add_argument(
        "--input", default="", metavar="NAME", help="only this input (its name, or inputs[N])"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the objects in the window (LastModified, size, URL) on stdout; send "
        "nothing, change no checkpoint",
    )
    parser.add_argument(
        "--enqueue",
        default="",
        metavar="QUEUE_URL",
        help="send one S3 notification per object to this SQS queue instead of processing "
        "it, for s3lb run daemons to share",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="list the window from its start again, ignoring the stored cursor (objects "
        "already done are still skipped)",
    )
    parser.add_argument(
        "--list-all",
        action="store_true",
        help="list every key under the prefix instead of only the YYYY/MM/DD/ folders "
        "near the window (for objects whose key date is far from their LastModified)",
    )
    parser.set_defaults(func=_cmd_import)


def _cmd_import(args: argparse.Namespace) -> int:
    # Late imports: the CLI loads every command module to build its parser.
    from s3lb.cli.main import run_trio
    from s3lb.config import load
    from s3lb.pipeline.importer import ImportOptions
    from s3lb.telemetry import Telemetry

    telemetry = Telemetry()
    config, warnings = load(args.config)
    for warning in warnings:
        telemetry.warning("configuration: " + warning, file=args.config)
    options = ImportOptions(
        since=args.since,
        to=args.to,
        input=args.input,
        dry_run=args.dry_run,
        enqueue=args.enqueue,
        restart=args.restart,
        list_all=args.list_all,
    )
    return run_trio(_main, config, telemetry, options)


async def _main(config: Any, telemetry: Any, options: Any) -> int:
    from s3lb.pipeline.importer import run_import

    return await run_import(config, telemetry, options, handle_signals=True)
