"""Checks of a converted configuration that its types cannot express: each raises
:class:`~s3lb.errors.ConfigError` naming the key (the CLI exits 2).

Values that pass type conversion and then hurt at run time are refused here: a stats
interval of 0 (a log flood), a request timeout of 0 (nothing is ever indexed), a queue
URL the AWS client cannot use, an unknown log format or a bad regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from s3lb.errors import ConfigError

if TYPE_CHECKING:
    from s3lb.config.schema import Config, Input

__all__ = ["check_config"]


def _check_format(item: Input, where: str) -> None:
    from s3lb.formats import get_format  # formats are pure; imported late to keep load cheap

    if item.log_format == "auto":
        return
    try:
        fmt = get_format(item.log_format)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0]), f"{where}.log_format") from None
    try:
        fmt.validate_options(item.log_format_options)
    except ValueError as exc:
        raise ConfigError(str(exc), f"{where}.log_format_options") from None


#: Bounds of durations, checked once converted: (key, test, reason).
_LIMITS: tuple[tuple[str, Callable[[float], bool], str], ...] = (
    ("settings.stats_interval", lambda v: v >= 1, "must be at least 1s (a stats line each)"),
    ("settings.wait_time", lambda v: v <= 20, "SQS long polling waits at most 20s"),
    ("settings.max_hold", lambda v: v <= 43200, "SQS keeps a message in flight 12h at most"),
    (
        "settings.visibility_timeout",
        lambda v: v <= 43200,
        "SQS visibility timeouts are 12h at most",
    ),
    ("output.elasticsearch.timeout", lambda v: v >= 0.1, "must be at least 100ms"),
    ("output.elasticsearch.backoff.init", lambda v: v > 0, "must be above 0 (a retry delay)"),
)


def check_config(config: Config) -> None:
    """Raise ConfigError naming the key of the first value that converts but cannot work."""
    s = config.settings
    root = config.root
    for i, item in enumerate(s.inputs):
        where = f"{root}.inputs[{i}]"
        if item.type == "sqs" and not item.queues_url:
            raise ConfigError("an sqs input needs queues_url", where)
        if item.type == "s3" and not item.buckets:
            raise ConfigError("an s3 input needs buckets", where)
        _check_format(item, where)
        if item.key_regex_fields:
            try:
                re.compile(item.key_regex_fields)
            except re.error as exc:
                raise ConfigError(
                    f"invalid regular expression: {exc}", f"{where}.key_regex_fields"
                ) from None
        for n, url in enumerate(item.queues_url):
            _check_queue_url(url, f"{where}.queues_url[{n}]")
    for key, ok, reason in _LIMITS:
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part, None)  # None: output.elasticsearch is not set
        if value is not None and not ok(value):
            raise ConfigError(reason, key.replace("settings", root, 1))
    es = config.output.elasticsearch
    if es is not None:
        if not es.hosts:
            raise ConfigError("needs at least one host", "output.elasticsearch.hosts")
        if es.backoff.max < es.backoff.init:
            raise ConfigError("must be at least backoff.init", "output.elasticsearch.backoff.max")
    config.sink  # noqa: B018 -- raises when no output is enabled


def _check_queue_url(url: str, where: str) -> None:
    """``http(s)://HOST/ACCOUNT/NAME``: anything else fails later, inside the AWS client."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and parts.hostname and parts.path.strip("/")
    except ValueError:  # e.g. an unclosed [IPv6 literal
        valid = False
    if not valid:
        raise ConfigError(
            f"not a queue URL (https://sqs.REGION.amazonaws.com/ID/NAME): {url}", where
        )
