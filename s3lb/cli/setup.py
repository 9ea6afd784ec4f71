"""``s3lb setup``: install the index templates of the configured output (idempotent).

Like ``filebeat setup``: a component template ``s3lb-base`` (``@timestamp``, the fields
of ``key_regex_fields``, dynamic rules), one ``s3lb-format-<name>`` per log format with
its real mappings (IP fields ``ip``, numbers numeric, identifiers ``keyword``), and an
index template on the pattern of ``output.elasticsearch.index`` composed of the base
and of the formats the inputs read (every format for ``log_format: auto``). In
``data_stream`` mode the index template creates data streams. With
``dead_letter_index``, its template too.

Templates apply to indices created afterwards: run it before ``s3lb run`` (running it
again changes nothing). ``--print`` shows the templates without a cluster.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

from s3lb.config import Config, ElasticsearchOutput, load
from s3lb.errors import ConfigError, SinkUnavailable
from s3lb.formats import FORMATS
from s3lb.sinks.elasticsearch import templates
from s3lb.sinks.elasticsearch.client import Cluster

__all__ = ["add_parser", "install", "plan"]


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


def configured_formats(config: Config) -> list[str]:
    """The formats the inputs read, canonical names, in a stable order."""
    names: set[str] = set()
    for item in config.settings.inputs:
        wanted = FORMATS if item.log_format == "auto" else [item.log_format]
        names.update(n for n in (templates.known_format(w) for w in wanted) if n)
    return sorted(names)


def plan(
    output: ElasticsearchOutput, formats: list[str], pattern: str = ""
) -> list[tuple[str, dict[str, Any]]]:
    """The ``(path, body)`` of each template to PUT, components first.

    Raises:
        ConfigError: an unknown format, or no safe index pattern.
    """
    canonical = []
    for name in formats:
        known = templates.known_format(name)
        if known is None:
            raise ConfigError(f"no mappings for log format {name!r}", "--format")
        if known not in canonical:
            canonical.append(known)
    pattern = pattern or templates.index_pattern(output.index)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("/_component_template/" + templates.component_name("base"), templates.BASE_TEMPLATE)
    ]
    for name in canonical:
        path = "/_component_template/" + templates.component_name(name)
        steps.append((path, templates.format_component(name)))
    steps.append(
        (
            "/_index_template/" + templates.template_name(pattern),
            templates.index_template(pattern, canonical, data_stream=output.data_stream),
        )
    )
    if output.dead_letter_index:
        steps.append(
            (
                "/_index_template/s3lb-dead-letter",
                templates.dead_letter_template(output.dead_letter_index),
            )
        )
    return steps


async def install(
    output: ElasticsearchOutput,
    steps: list[tuple[str, dict[str, Any]]],
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[str]:
    """PUT each template; return one line per template installed.

    Raises:
        SinkUnavailable: the cluster cannot be reached or refused a template.
    """
    done = []
    async with Cluster(output, transport) as cluster:
        for path, body in steps:
            response = await cluster.request("PUT", path, json=body)
            if response.status_code != 200:
                raise SinkUnavailable(f"PUT {path}: HTTP {response.status_code}: {response.text}")
            kind, name = path.strip("/").split("/")
            done.append(f"installed {kind.strip('_').replace('_', ' ')} {name}")
    return done


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
    from s3lb.cli.main import run_trio  # the CLI's trio.run, which unwraps our errors

    config, warnings = load(args.config)
    for warning in warnings:
        print(f"s3lb setup: configuration: {warning}", file=sys.stderr)
    output = config.output.elasticsearch
    if output is None or not output.enabled:
        raise ConfigError("s3lb setup needs output.elasticsearch", "output")
    steps = plan(output, args.formats or configured_formats(config), args.index_pattern)
    if args.print_only:
        json.dump(dict(steps), sys.stdout, indent=2)
        print()
        return 0
    return run_trio(_install_and_report, output, steps)
