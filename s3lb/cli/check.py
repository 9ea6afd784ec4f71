"""``s3lb check``: validate the configuration, then reach what ``s3lb run`` will use.

One line per check on stdout, ``ok``, ``warn`` or ``FAIL``, saying what was checked and
what was found:

- the configuration (and its warnings);
- AWS credentials (where they come from) and whose they are (STS GetCallerIdentity);
- each queue: GetQueueAttributes (messages waiting, visibility timeout, redrive policy);
- each bucket the configuration names (``type: s3`` inputs): a one-key ListObjectsV2;
- the output: ``GET /`` on every cluster host, or the output file's directory;
- the state directory, and the metrics address.

Nothing is changed: no message is received, no document written. The exit status is
0 when nothing failed, 1 when a check failed, 2 when the configuration is invalid.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import botocore.session
import httpx
import msgspec
import trio

from s3lb.aws.session import AwsSession
from s3lb.aws.sqs import SqsClient, SqsError
from s3lb.checkpoint import space_needed
from s3lb.cli.common import Exit, duration, load_config, redact_text, run_trio
from s3lb.config import Config, ElasticsearchOutput, FileOutput
from s3lb.errors import ConfigError, S3lbError
from s3lb.sinks.elasticsearch.client import redact_url
from s3lb.sources import parse_bucket_url

__all__ = ["Check", "add_parser", "run_checks"]

Status = Literal["ok", "warn", "FAIL"]


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check."""

    status: Status
    what: str
    detail: str

    def line(self) -> str:
        """``ok    queue https://…: 3 visible, …``, with any password masked."""
        return redact_text(f"{self.status:<5} {self.what}: {self.detail}")


def add_parser(commands: Any) -> None:
    """Register ``check`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "check",
        help="validate the configuration and reach the queues, buckets and cluster",
        description=__doc__,
    )
    parser.add_argument(
        "--timeout",
        type=duration,
        default=10.0,
        metavar="DURATION",
        help="time allowed to each check: 10, 10s, 1m… (default: 10s)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    out = sys.stdout
    warnings: list[str] = []
    try:
        config = load_config(args, warnings.append)
    except ConfigError as exc:
        print(Check("FAIL", "configuration", str(exc)).line(), file=out)
        print("s3lb check: the configuration is invalid", file=out)
        return Exit.USAGE
    checks = [Check("ok", "configuration", _describe(config, args.config))]
    checks += [Check("warn", "configuration", w) for w in warnings]
    checks += run_trio(run_checks, config, args.timeout)
    for check in checks:
        print(check.line(), file=out)
    failed = sum(c.status == "FAIL" for c in checks)
    if failed:
        print(f"s3lb check: {failed} of {len(checks)} checks failed", file=out)
        return Exit.FAILED
    print(f"s3lb check: all {len(checks)} checks passed", file=out)
    return Exit.OK


def _describe(config: Config, path: str) -> str:
    queues, buckets = len(_queues(config)), len(_buckets(config))
    output = "elasticsearch" if isinstance(config.sink, ElasticsearchOutput) else "file"
    return f"{path} is valid ({_n(queues, 'queue')}, {_n(buckets, 'bucket')}, output {output})"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


async def run_checks(config: Config, timeout: float = 10.0) -> list[Check]:
    """Run every check concurrently; return their outcomes in a stable order."""
    session = AwsSession(config.aws.region, config.aws.profile)
    Probe = Callable[[httpx.AsyncClient], Awaitable[Check]]
    jobs: list[tuple[str, Probe]] = [
        ("aws credentials", lambda http: _credentials(config, session, http))
    ]

    def queue(url: str) -> Probe:
        return lambda http: _queue(session, http, url)

    def bucket(name: str) -> Probe:
        return lambda http: _bucket(session, http, name)

    jobs += [(f"queue {u}", queue(u)) for u in _queues(config)]
    jobs += [(f"bucket {b}", bucket(b)) for b in _buckets(config)]
    sink = config.sink
    if isinstance(sink, ElasticsearchOutput):
        out = sink

        def cluster(url: str) -> Probe:
            return lambda _http: _cluster(out, url)

        jobs += [(f"cluster {redact_url(u)}", cluster(u)) for u in sink.host_urls()]
    results: list[Check] = [Check("FAIL", what, "not run") for what, _ in jobs]

    async def run(i: int, http: httpx.AsyncClient) -> None:
        what, probe = jobs[i]
        try:
            with trio.fail_after(timeout):
                results[i] = await probe(http)
        except trio.TooSlowError:
            results[i] = Check("FAIL", what, f"no answer within {timeout:g}s")
        except S3lbError as exc:  # no region, no credentials, a CA file unreadable…
            results[i] = Check("FAIL", what, str(exc))

    client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=timeout))
    async with client as http, trio.open_nursery() as nursery:
        for i in range(len(jobs)):
            nursery.start_soon(run, i, http)
    if isinstance(sink, FileOutput):
        results.append(_file_output(sink))
    results.append(_state_dir(config.settings.state_dir))
    if config.metrics.listen:
        results.append(_metrics(config.metrics.listen))
    return results


def _queues(config: Config) -> list[str]:
    return [u for i in config.settings.inputs if i.type == "sqs" for u in i.queues_url]


def _buckets(config: Config) -> list[str]:
    """The bucket URLs of the ``type: s3`` inputs, as written (``s3://bucket/prefix``)."""
    return [b for i in config.settings.inputs if i.type == "s3" for b in i.buckets]


# -- AWS -------------------------------------------------------------------------------


async def _credentials(config: Config, session: AwsSession, http: httpx.AsyncClient) -> Check:
    """Where the credentials come from, and whose they are (STS GetCallerIdentity)."""
    what = "aws credentials"
    chain = botocore.session.get_session()
    if config.aws.profile:
        chain.set_config_variable("profile", config.aws.profile)
    try:
        credentials = await trio.to_thread.run_sync(chain.get_credentials)
    except Exception as exc:  # botocore raises many kinds (unknown profile, expired SSO…)
        return Check("FAIL", what, f"{type(exc).__name__}: {exc}")
    if credentials is None:
        return Check(
            "FAIL", what, "none found (environment, shared files, SSO, container or instance role)"
        )
    found = f"from {credentials.method}"
    region = session.default_region or "us-east-1"
    url = session.endpoint("sts", region) + "/"
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    headers = await session.sign(
        "POST",
        url,
        service="sts",
        region=region,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        body=body,
    )
    try:
        response = await http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Check("warn", what, f"{found}; STS unreachable ({type(exc).__name__})")
    arn = re.search(rb"<Arn>([^<]+)</Arn>", response.content)
    if response.status_code == 200 and arn:
        return Check("ok", what, f"{found}: {arn.group(1).decode()}")
    code = _XML_CODE.search(response.content)
    reason = code.group(1).decode() if code else f"HTTP {response.status_code}"
    if reason in _AUTH_CODES:
        return Check("FAIL", what, f"{found}, refused by AWS: {_AUTH_CODES[reason]} ({reason})")
    return Check("warn", what, f"{found}; STS GetCallerIdentity answered {reason}")


_XML_CODE = re.compile(rb"<Code>([^<]+)</Code>")
_AUTH_CODES = {
    "InvalidClientTokenId": "the access key is not valid",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "ExpiredToken": "the session token has expired",
}

_QUEUE_HINTS = {
    "NonExistentQueue": "no such queue: check the URL (account id, region, name)",
    "QueueDoesNotExist": "no such queue: check the URL (account id, region, name)",
    "AccessDenied": "access denied: the IAM policy needs sqs:GetQueueAttributes, "
    "sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility on this queue",
    **_AUTH_CODES,
}


async def _queue(session: AwsSession, http: httpx.AsyncClient, url: str) -> Check:
    what = f"queue {url}"
    if urlsplit(url).scheme not in ("http", "https"):
        return Check(
            "FAIL", what, "not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
        )
    try:
        attributes = await SqsClient(session, http).attributes(url)
    except SqsError as exc:
        code = exc.code.rsplit(".", 1)[-1]
        hint = _QUEUE_HINTS.get(code)
        return Check("FAIL", what, f"{hint} ({exc.code})" if hint else str(exc))
    visible = attributes.get("ApproximateNumberOfMessages", "?")
    in_flight = attributes.get("ApproximateNumberOfMessagesNotVisible", "?")
    detail = (
        f"{visible} waiting, {in_flight} in flight, "
        f"visibility timeout {attributes.get('VisibilityTimeout', '?')}s"
    )
    redrive = attributes.get("RedrivePolicy")
    if not redrive:
        return Check(
            "warn",
            what,
            detail + "; no redrive policy: a message s3lb cannot finish is retried forever "
            "(set a dead-letter queue with maxReceiveCount)",
        )
    try:
        policy = msgspec.json.decode(redrive)
        target = str(policy.get("deadLetterTargetArn", "?")).rsplit(":", 1)[-1]
        receives = policy.get("maxReceiveCount", "?")
        detail += f"; dead-letter queue {target} after {receives} receives"
    except (msgspec.DecodeError, AttributeError):
        detail += "; redrive policy set"
    return Check("ok", what, detail)


_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_S3_HINTS = {
    "NoSuchBucket": "no such bucket",
    "AccessDenied": "access denied: the IAM policy needs s3:ListBucket on the bucket and "
    "s3:GetObject on its objects",
    "AllAccessDisabled": "all access to this bucket is disabled",
    "InvalidAccessKeyId": "the access key is not valid",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "ExpiredToken": "the session token has expired",
}


async def _bucket(session: AwsSession, http: httpx.AsyncClient, bucket_url: str) -> Check:
    """A one-key ListObjectsV2 under the prefix of ``bucket_url``, as ``s3lb import``
    lists it."""
    what = f"bucket {bucket_url}"
    bucket, prefix = parse_bucket_url(bucket_url, "buckets")  # ConfigError: a FAIL line
    query = "list-type=2&max-keys=1" + (f"&prefix={quote(prefix, safe='')}" if prefix else "")
    region = session.default_region or "us-east-1"
    for _attempt in range(2):
        endpoint = session.endpoint("s3", region)
        if session.has_custom_endpoint("s3", region) or not _DNS_BUCKET.match(bucket):
            url = f"{endpoint}/{quote(bucket, safe='')}?{query}"
        else:
            scheme, host = endpoint.split("://", 1)
            url = f"{scheme}://{bucket}.{host}/?{query}"
        headers = await session.sign("GET", url, service="s3", region=region)
        try:
            response = await http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            return Check("FAIL", what, f"S3 unreachable: {type(exc).__name__}: {exc}")
        moved = response.headers.get("x-amz-bucket-region")
        if response.status_code in (301, 307, 400) and moved and moved != region:
            region = moved
            continue
        break
    if response.status_code == 200:
        return Check("ok", what, f"listable (region {region})")
    match = _XML_CODE.search(response.content)
    code = match.group(1).decode() if match else f"HTTP {response.status_code}"
    hint = _S3_HINTS.get(code)
    return Check("FAIL", what, f"{hint} ({code})" if hint else f"S3 answered {code}")


# -- output ----------------------------------------------------------------------------


async def _cluster(output: ElasticsearchOutput, url: str) -> Check:
    """``GET /`` on one host, with the output's own client (auth, TLS, SigV4)."""
    from s3lb.sinks.elasticsearch.client import open_client  # late: only for a cluster output

    what = f"cluster {redact_url(url)}"
    try:
        async with open_client(output) as client:
            response = await client.get(url + "/")
    except httpx.HTTPError as exc:
        return Check("FAIL", what, f"unreachable: {type(exc).__name__}: {exc}")
    if response.status_code == 401:
        return Check("FAIL", what, "credentials refused (HTTP 401): check username/password")
    if response.status_code == 403:
        return Check(
            "warn",
            what,
            "reachable, but GET / is forbidden (HTTP 403): the user may lack the cluster "
            "monitor privilege; indexing may still be allowed",
        )
    if response.status_code != 200:
        return Check("FAIL", what, f"HTTP {response.status_code}: {response.text[:200]}")
    try:
        info = msgspec.json.decode(response.content)
        version = info.get("version", {})
        product = "OpenSearch" if version.get("distribution") == "opensearch" else "Elasticsearch"
        name = info.get("cluster_name", "?")
        detail = f"{product} {version.get('number', '?')}, cluster {name}"
    except (msgspec.DecodeError, AttributeError):
        return Check("warn", what, "reachable, but GET / did not answer like a cluster")
    return Check("ok", what, detail)


def _file_output(output: FileOutput) -> Check:
    target = output.target()
    what = f"output file {target}"
    if target == "-":
        return Check("ok", "output", "NDJSON on stdout")
    path = Path(target)
    if path.is_dir() or target.endswith("/"):
        return Check("FAIL", what, "is a directory, not a file (or set output.file.filename)")
    if path.exists() and not os.access(path, os.W_OK):
        return Check("FAIL", what, "is not writable by this user")
    return _writable(path.parent, what, "its directory")


#: Below this much free space, checkpoint commits will soon fail: a warning.
_LOW_SPACE = 16 << 20


def _state_dir(path: str) -> Check:
    """Writable, and room for the checkpoint store to open (``s3lb run`` and ``s3lb
    import`` refuse to start without it) and to grow."""
    found = _writable(Path(path), f"state_dir {path}", "it")
    if found.status != "ok":
        return found
    try:
        needed, free = space_needed(path)
    except OSError as exc:
        return Check("warn", found.what, f"{found.detail}; free space unknown: {exc}")
    detail = f"{found.detail}; {free} bytes free, the checkpoint store needs {needed} to open"
    if free < needed:
        return Check("FAIL", found.what, f"{detail}: s3lb cannot start until space is freed")
    if free < needed + _LOW_SPACE:
        return Check("warn", found.what, f"{detail}: checkpoint commits fail once it is full")
    return Check("ok", found.what, detail)


def _writable(directory: Path, what: str, name: str) -> Check:
    if directory.is_dir():
        if os.access(directory, os.W_OK | os.X_OK):
            return Check("ok", what, "writable")
        return Check("FAIL", what, f"{name} is not writable by this user")
    if directory.exists():
        return Check("FAIL", what, f"{name} is not a directory")
    parent = next((p for p in directory.parents if p.exists()), Path("/"))
    if not parent.is_dir():
        return Check("FAIL", what, f"{name} cannot be created: {parent} is not a directory")
    if os.access(parent, os.W_OK | os.X_OK):
        return Check("ok", what, f"will be created under {parent}")
    return Check("FAIL", what, f"{name} does not exist and {parent} is not writable")


def _metrics(listen: str) -> Check:
    from s3lb.metrics import parse_listen

    what = f"metrics {listen}"
    host, port = parse_listen(listen)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        return Check("warn", what, f"cannot listen now: {exc.strerror or exc} (s3lb running?)")
    return Check("ok", what, "free to listen on")
