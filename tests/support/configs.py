"""The one builder of s3lb configurations for tests and benches.

:func:`s3lb_config` renders a configuration (JSON, which is YAML) from keyword
arguments: inputs (SQS queues, ``s3://`` bucket URLs), the output (a cluster URL or a
file), ``state_dir`` and any other ``s3lb.*`` setting. Its defaults are the quick
timings of a test daemon; a value of ``None`` drops a default key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ES_DEFAULTS", "SETTINGS_DEFAULTS", "s3_input", "s3lb_config", "sqs_input"]

#: ``s3lb.*`` keys every test daemon gets unless told otherwise. ``processes: 1``: a
#: test means one process unless it says ``processes=2`` (the default, ``auto``, would
#: make the meaning and the time of a test depend on the cores of the machine); pass
#: ``processes=None`` for the default.
SETTINGS_DEFAULTS: dict[str, Any] = {"shutdown_timeout": "5s", "wait_time": "1s", "processes": 1}
#: ``output.elasticsearch.*`` keys every test daemon gets unless told otherwise.
ES_DEFAULTS: dict[str, Any] = {
    "index": "alb-%{+yyyy.MM.dd}",
    "flush_interval": "200ms",
    "backoff.init": "200ms",
    "backoff.max": "1s",
}


def _merged(defaults: Mapping[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """``defaults`` updated by ``given``; keys whose value is ``None`` are dropped."""
    out = {**defaults, **(given or {})}
    return {k: v for k, v in out.items() if v is not None}


def sqs_input(queues: Sequence[str], log_format: str = "auto", **options: Any) -> dict[str, Any]:
    """An ``sqs`` input polling every 100 ms unless ``poll_frequency`` says otherwise."""
    return _merged(
        {
            "type": "sqs",
            "queues_url": list(queues),
            "log_format": log_format,
            "poll_frequency": "100ms",
        },
        options,
    )


def s3_input(buckets: Sequence[str], log_format: str = "auto", **options: Any) -> dict[str, Any]:
    """An ``s3`` input (``s3 import``) over ``buckets`` (``s3://bucket/prefix`` URLs)."""
    return _merged({"type": "s3", "buckets": list(buckets), "log_format": log_format}, options)


def s3lb_config(
    *,
    state_dir: str | Path = "./state",
    queues: Sequence[str] = (),
    buckets: Sequence[str] = (),
    log_format: str = "auto",
    input_options: Mapping[str, Any] | None = None,
    inputs: Sequence[Mapping[str, Any]] = (),
    es_url: str | None = None,
    es: Mapping[str, Any] | None = None,
    file: Mapping[str, Any] | None = None,
    metrics: str | None = None,
    sections: Mapping[str, Any] | None = None,
    **settings: Any,
) -> str:
    """A configuration for ``s3lb run``/``import``/``check``…

    - ``buckets``: one ``s3`` input over them; ``queues``: one ``sqs`` input after it;
      both take ``log_format`` and ``input_options`` (``key_regex_fields``, ``fields``…);
      ``inputs`` are added as they are (see :func:`sqs_input`, :func:`s3_input`);
    - ``es_url``: an ``output.elasticsearch`` to that cluster, :data:`ES_DEFAULTS`
      updated by ``es``; ``file``: an ``output.file`` with these keys;
    - ``metrics``: ``metrics.listen``; ``sections``: other top-level keys;
    - ``settings``: ``s3lb.*`` keys over :data:`SETTINGS_DEFAULTS`.
    """
    options = dict(input_options or {})
    made: list[dict[str, Any]] = []
    if buckets:  # first: an import job is named after its input (inputs[0])
        made.append(s3_input(buckets, log_format, **_merged(options, {"poll_frequency": None})))
    if queues:
        made.append(sqs_input(queues, log_format, **options))
    body = _merged(SETTINGS_DEFAULTS, {"state_dir": str(state_dir), **settings})
    body["inputs"] = [*made, *(dict(i) for i in inputs)]
    doc: dict[str, Any] = {"s3lb": body}
    if es_url is not None:
        doc["output.elasticsearch"] = {"hosts": [es_url], **_merged(ES_DEFAULTS, es)}
    if file is not None:
        doc["output.file"] = dict(file)
    if metrics is not None:
        doc["metrics"] = {"listen": metrics}
    doc.update(sections or {})
    return json.dumps(doc, indent=1)
