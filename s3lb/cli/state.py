"""``s3lb state``: what the checkpoint store knows, without disturbing the daemon.

``s3lb state -c CONFIG [--json]`` lists objects (in progress first) and import
cursors; ``s3lb state prune`` forgets finished objects older than ``done_retention``
(or ``--older-than``); ``s3lb state forget BUCKET/KEY`` forgets one object so that
its next notification re-reads it from the start. Run it as the daemon's user: the
store's files are private to it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import Any

from s3lb.checkpoint import ObjectState, open_store, open_store_readonly
from s3lb.cli.common import Exit, duration, load_config
from s3lb.cli.helptext import Subcommands
from s3lb.cli.state_view import render_state
from s3lb.config import Settings

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    """Register ``state`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "state",
        help="show or edit the checkpoint store",
        description=__doc__,
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON document listing everything, instead of the table (whose keys are "
        "shortened to the terminal's width)",
    )
    parser.set_defaults(func=_show)
    actions = Subcommands(
        parser.add_subparsers(
            dest="action", metavar="ACTION", help="without one, list what the store holds:"
        )
    )
    prune = actions.add_parser("prune", help="forget finished objects older than a duration")
    prune.add_argument(
        "--older-than",
        type=duration,
        default=None,
        metavar="DURATION",
        help="e.g. 7d, 12h (default: s3lb.done_retention of the configuration)",
    )
    prune.set_defaults(func=_prune)
    forget = actions.add_parser(
        "forget",
        help="forget one object (every version): its next notification reads it from the start",
    )
    forget.add_argument(
        "object", metavar="BUCKET/KEY", help="the object, as bucket/key or s3://bucket/key"
    )
    forget.set_defaults(func=_forget)


def _state_dir(args: argparse.Namespace) -> tuple[str, Settings]:
    config = load_config(args)
    return config.settings.state_dir, config.settings


def _width() -> int | None:
    """The terminal's width when stdout is one; None (no limit) when it is piped."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def _show(args: argparse.Namespace) -> int:
    state_dir, _ = _state_dir(args)
    store = open_store_readonly(state_dir)
    if store is None:
        print(f"s3lb state: no checkpoint store under {state_dir} yet", file=sys.stderr)
        print(render_state([], [], args.json), end="")
        return Exit.OK
    try:
        text = render_state(
            store.objects(), store.cursors(), args.json, usage=store.usage(), width=_width()
        )
    finally:
        store.close()
    print(text, end="")
    return Exit.OK


def _prune(args: argparse.Namespace) -> int:
    state_dir, settings = _state_dir(args)
    retention = settings.done_retention if args.older_than is None else args.older_than
    store = open_store(state_dir, map_size=settings.checkpoint.map_size)
    try:
        pruned = store.prune(time.time() - retention)
    finally:
        store.close()
    print(f"s3lb state: forgot {pruned} finished objects")
    return Exit.OK


def _forget(args: argparse.Namespace) -> int:
    state_dir, settings = _state_dir(args)
    bucket, _, key = args.object.removeprefix("s3://").partition("/")
    store = open_store(state_dir, map_size=settings.checkpoint.map_size)
    try:
        victims: list[ObjectState] = [
            o for o in store.objects() if o.bucket == bucket and o.key == key
        ]
        if victims:
            store.forget(victims)
    finally:
        store.close()
    if not victims:
        print(f"s3lb state: s3://{bucket}/{key} is not in the store", file=sys.stderr)
        return Exit.FAILED
    print(f"s3lb state: forgot {len(victims)} version(s) of s3://{bucket}/{key}")
    return Exit.OK
