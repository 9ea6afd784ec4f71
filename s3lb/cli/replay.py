"""``s3lb replay-dead-letter``: send rejected documents again, then forget what got in.

Once the cause of a rejection is fixed (a mapping, a full disk, a closed index), this
re-sends every ``rejected`` entry of the dead-letter store, each with its original
``_index`` and ``_id`` under ``create``: a document that got in meanwhile is answered
409 and counted as already there, never indexed twice. Entries that got in (or were
there) are removed; one rejected again is dead-lettered anew with its new reason;
one the cluster could not settle before ``--timeout`` is kept. Entries without a
document (lines that could not be parsed) are kept as they are.

Sources: the files under ``state_dir/dead-letter/`` and, when configured,
``output.elasticsearch.dead_letter_index``. Files are claimed by renaming them
(``*.replaying``) while holding the lock the daemon takes to write, so a running
daemon keeps dead-lettering safely into a new file; what is kept is written to a
new ``dead-letter-*.kept-*.ndjson`` file. A replay cut short (kill, crash) leaves its
claimed files, which the next replay picks up again.

Exit status: 0 when every replayable entry got in, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from s3lb.cli.common import load_config, run_trio
from s3lb.config import ElasticsearchOutput, parse_duration
from s3lb.errors import ConfigError, SinkUnavailable
from s3lb.sinks.elasticsearch.replay import ReplayBusy, replay
from s3lb.telemetry import Telemetry

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    """Register ``replay-dead-letter`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "replay-dead-letter",
        help="send dead-lettered documents again with their original ids",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--timeout",
        default="5m",
        help="give up on what is not settled after this long (default 5m); it is kept",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = load_config(args)
    telemetry = Telemetry()
    output = config.output.elasticsearch
    if output is None or not output.enabled:
        raise ConfigError("replay-dead-letter needs output.elasticsearch", "output")
    try:
        timeout = parse_duration(args.timeout)
    except ValueError as exc:
        raise ConfigError(str(exc), "--timeout") from None
    return run_trio(_replay_and_report, output, Path(config.settings.state_dir), telemetry, timeout)


async def _replay_and_report(
    output: ElasticsearchOutput, state_dir: Path, telemetry: Telemetry, timeout: float
) -> int:
    try:
        report = await replay(output, state_dir, telemetry, timeout)
    except (ReplayBusy, SinkUnavailable) as exc:
        print(f"s3lb replay-dead-letter: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.complete else 1
