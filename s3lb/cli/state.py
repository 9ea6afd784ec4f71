"""``s3lb state``: what the checkpoint store knows, without disturbing the daemon.

``s3lb state -c CONFIG [--json]`` lists objects (in progress first) and import
cursors; ``s3lb state prune`` forgets finished objects older than ``done_retention``
(or ``--older-than``); ``s3lb state forget BUCKET/KEY`` forgets one object so that
its next notification re-reads it from the start. Run it as the daemon's user: the
store's files are private to it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from s3lb.checkpoint import ObjectState, open_store, open_store_readonly
from s3lb.cli.state_view import render_state
from s3lb.config import load, parse_duration

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    """Register ``state`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "state",
        help="show or edit the checkpoint store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-c", "--config", default="s3lb.yml", help="configuration file")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.set_defaults(func=_show)
    actions = parser.add_subparsers(dest="action")
    prune = actions.add_parser("prune", help="forget finished objects older than a duration")
    prune.add_argument("--older-than", default="", help="duration (default: done_retention)")
    prune.set_defaults(func=_prune)
    forget = actions.add_parser("forget", help="forget one object (every version)")
    forget.add_argument("object", metavar="BUCKET/KEY")
    forget.set_defaults(func=_forget)


def _state_dir(args: argparse.Namespace) -> tuple[str, Any]:
    config, _ = load(args.config)
    return config.settings.state_dir, config.settings


def _show(args: argparse.Namespace) -> int:
    state_dir, _ = _state_dir(args)
    store = open_store_readonly(state_dir)
    if store is None:
        print(f"s3lb state: no checkpoint store under {state_dir} yet", file=sys.stderr)
        print(render_state([], [], args.json))
        return 0
    try:
        print(render_state(store.objects(), store.cursors(), args.json, usage=store.usage()))
    finally:
        store.close()
    return 0


def _prune(args: argparse.Namespace) -> int:
    state_dir, settings = _state_dir(args)
    retention = parse_duration(args.older_than) if args.older_than else settings.done_retention
    store = open_store(state_dir, map_size=settings.checkpoint.map_size)
    try:
        pruned = store.prune(time.time() - retention)
    finally:
        store.close()
    print(f"s3lb state: forgot {pruned} finished objects")
    return 0


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
        return 1
    print(f"s3lb state: forgot {len(victims)} version(s) of s3://{bucket}/{key}")
    return 0
