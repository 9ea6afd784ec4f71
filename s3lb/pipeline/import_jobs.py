"""The jobs of ``s3lb import``: one per bucket URL of each ``type: s3`` input, with its
time window, the command-line flags overriding the configuration; and the synthetic S3
notifications that ``--enqueue`` sends for ``s3lb run`` daemons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote_plus

import msgspec

from s3lb.aws.s3 import ListedObject
from s3lb.config import Config
from s3lb.errors import ConfigError
from s3lb.sources import InputRuntime, Share, Window, format_time, parse_bucket_url, parse_time

__all__ = ["ImportJob", "ImportOptions", "notification_body", "plan_jobs"]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the command line adds to the configuration."""

    since: str | None = None
    to: str | None = None
    #: Only the ``type: s3`` input with this ``name`` (or ``inputs[N]``).
    input: str = ""
    dry_run: bool = False
    #: Queue URL: send one S3 notification per object instead of processing it.
    enqueue: str = ""
    #: Ignore the stored cursor and list the window again (done objects are skipped).
    restart: bool = False
    #: List every key under the prefix, not only the date folders near the window.
    list_all: bool = False
    page_size: int = 1000
    #: A worker process of a multi-process import: ship only this share of the keys.
    share: Share | None = None


@dataclass(frozen=True, slots=True)
class ImportJob:
    """One bucket URL of one ``type: s3`` input, with its window."""

    id: str
    input: InputRuntime
    bucket: str
    prefix: str
    window: Window
    list_all: bool = False


def plan_jobs(config: Config, options: ImportOptions) -> list[ImportJob]:
    """The jobs of the configuration's ``type: s3`` inputs, flags overriding the file.

    Raises:
        ConfigError: no such input, a bad time or bucket URL, ``since`` not before ``to``.
    """
    root = config.root
    jobs: dict[str, ImportJob] = {}
    names = []
    for i, item in enumerate(config.settings.inputs):
        if item.type != "s3":
            continue
        runtime = InputRuntime.from_config(item, i)
        names.append(runtime.name)
        if options.input and options.input not in (runtime.name, f"inputs[{i}]"):
            continue
        where = f"{root}.inputs[{i}]"
        since = _bound(options.since, "--since", item.since, f"{where}.since")
        to = _bound(options.to, "--to", item.to, f"{where}.to")
        if since is not None and to is not None and since >= to:
            raise ConfigError(
                f"since ({format_time(since)}) must be before to ({format_time(to)})", where
            )
        window = Window(since, to)
        for n, url in enumerate(item.buckets):
            bucket, prefix = parse_bucket_url(url, f"{where}.buckets[{n}]")
            job_id = f"{runtime.name} s3://{bucket}/{prefix} {window}"
            if options.list_all:
                job_id += " list-all"
            if options.enqueue:
                job_id += f" enqueue={options.enqueue}"
            if options.share is not None:
                job_id = options.share.job_id(job_id)
            jobs.setdefault(
                job_id, ImportJob(job_id, runtime, bucket, prefix, window, options.list_all)
            )
    if not jobs:
        if options.input and names:
            raise ConfigError(
                f"no type: s3 input named {options.input!r} (there are: {', '.join(names)})",
                f"{root}.inputs",
            )
        raise ConfigError("no type: s3 input with buckets: nothing to import", f"{root}.inputs")
    return list(jobs.values())


def _bound(flag: str | None, flag_name: str, configured: str, key: str) -> datetime | None:
    if flag is not None:
        return parse_time(flag, flag_name) if flag.strip() else None
    return parse_time(configured, key) if configured.strip() else None


def notification_body(bucket: str, obj: ListedObject, region: str, event_time: str) -> str:
    """A synthetic S3 ``ObjectCreated:Put`` notification for ``obj``, as S3 writes it
    (key form-encoded, ETag and size included), for ``s3lb run`` daemons to consume."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time,
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "s3lb-import"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "s3lb-import",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(obj.key, safe="/"), "size": obj.size, "eTag": obj.etag},
        },
    }
    return msgspec.json.encode({"Records": [record]}).decode()
