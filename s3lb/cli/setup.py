"""``s3lb setup``: install the index templates of the configured output (idempotent).

Like ``filebeat setup``: a component template ``s3lb-base`` (``@timestamp``, the fields
of ``key_regex_fields``, dynamic rules), one ``s3lb-format-<name>`` per log format with
its real mappings (IP fields ``ip``, numbers numeric, identifiers ``keyword``), and an
index template on the pattern of ``output.elasticsearch.index`` composed of the base
and of the formats the inputs read (every format for ``log_format: auto``). In
``data_stream`` mode the index template creates data streams. With
``dead_letter_index``, its template too.

Templates apply to indices created afterwards: run it before ``s3lb run``. Running it
again changes nothing: each template is reported ``installed`` or ``unchanged``.
``--print`` shows the templates without a cluster.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from s3lb.cli.common import load_config, run_trio
from s3lb.config import ElasticsearchOutput
from s3lb.errors import ConfigError, SinkUnavailable
from s3lb.sinks.elasticsearch.setup import configured_formats, install, plan

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    """Register ``setup`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "setup",
        help="install the index templates with the mappings of each log format",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--index-pattern",
        default="",
        help="indices the template applies to (default: from output.elasticsearch.index)",
    )
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        default=[],
        metavar="NAME",
        help="a log format to include (repeatable; default: those of the inputs)",
    )
    parser.add_argument(
        "--print", dest="print_only", action="store_true", help="print the templates and stop"
    )
    parser.set_defaults(func=_run)


async def _install_and_report(
    output: ElasticsearchOutput, steps: list[tuple[str, dict[str, Any]]]
) -> int:
    try:
        lines = await install(output, steps)
    except SinkUnavailable as exc:
        print(f"s3lb setup: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def _run(args: argparse.Namespace) -> int:
    config = load_config(
        args, lambda warning: print(f"s3lb setup: configuration: {warning}", file=sys.stderr)
    )
    output = config.output.elasticsearch
    if output is None or not output.enabled:
        raise ConfigError("s3lb setup needs output.elasticsearch", "output")
    steps = plan(output, args.formats or configured_formats(config), args.index_pattern)
    if args.print_only:
        json.dump(dict(steps), sys.stdout, indent=2)
        print()
        return 0
    return run_trio(_install_and_report, output, steps)
