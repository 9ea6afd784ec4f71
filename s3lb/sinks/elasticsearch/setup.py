"""The template install of ``s3lb setup``: what to PUT (:func:`plan`) and doing it
(:func:`install`), saying per template whether it was installed or already there.

Each template is stored with a digest of its body in ``_meta.digest``; a template
whose stored digest matches is left alone and reported ``unchanged``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

from s3lb.config import Config, ElasticsearchOutput
from s3lb.errors import ConfigError, SinkUnavailable
from s3lb.formats import FORMATS
from s3lb.sinks.elasticsearch import templates
from s3lb.sinks.elasticsearch.client import Cluster
from s3lb.sinks.elasticsearch.redact import short_reason

__all__ = ["configured_formats", "digest", "install", "plan"]

#: The key of each template kind in a GET answer.
_LISTED = {"_component_template": "component_templates", "_index_template": "index_templates"}


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


def digest(body: dict[str, Any]) -> str:
    """A digest of a template body (its keys in a stable order)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


async def install(
    output: ElasticsearchOutput,
    steps: list[tuple[str, dict[str, Any]]],
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[str]:
    """PUT each template that is missing or differs; return one line per template
    (``installed …`` or ``unchanged …``).

    Raises:
        SinkUnavailable: the cluster cannot be reached or refused a template.
    """
    done = []
    async with Cluster(output, transport) as cluster:
        for path, body in steps:
            kind, name = path.strip("/").split("/")
            stamp = digest(body)
            if await _stored_digest(cluster, path, kind) == stamp:
                verb = "unchanged"
            else:
                stamped = {**body, "_meta": {**body.get("_meta", {}), "digest": stamp}}
                response = await cluster.request("PUT", path, json=stamped)
                if response.status_code != 200:
                    reason = short_reason(response.status_code, response.content)
                    raise SinkUnavailable(f"PUT {path}: {reason}")
                verb = "installed"
            done.append(f"{verb} {kind.strip('_').replace('_', ' ')} {name}")
    return done


async def _stored_digest(cluster: Cluster, path: str, kind: str) -> str | None:
    """The digest the template at ``path`` was installed with (None: none there)."""
    response = await cluster.request("GET", path)
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise SinkUnavailable(f"GET {path}: {short_reason(response.status_code, response.content)}")
    try:
        (listed,) = response.json()[_LISTED[kind]]
        stored = listed[kind.strip("_")]["_meta"]["digest"]
    except (ValueError, KeyError, TypeError):
        return None
    return stored if isinstance(stored, str) else None
