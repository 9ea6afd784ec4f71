"""Configuration: one YAML file, loaded once into frozen msgspec structs.

The seed's ``s3logsbeat.yml`` works unchanged:

- the root key is ``s3lb:`` (native) or ``s3logsbeat:`` (seed); not both;
- keys may be written dotted or nested (``output.elasticsearch.hosts`` or
  ``output: {elasticsearch: {hosts: …}}``), as in every beat;
- durations are ``500ms``, ``5s``, ``1m``, ``2h``, ``7d`` or bare numbers (seconds);
- ``${VAR}`` and ``${VAR:default}`` are expanded from the environment in every string;
- keys s3lb does not know are reported with :func:`load`'s warnings (beats settings
  such as ``queue.mem`` or ``logging`` have no effect here) and otherwise ignored;
- an invalid value raises :class:`~s3lb.errors.ConfigError` naming the key path
  (the CLI exits 2).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from s3lb.config.checks import check_config
from s3lb.config.cores import usable_cores
from s3lb.errors import ConfigError

__all__ = [
    "AwsAuth",
    "Config",
    "Duration",
    "ElasticsearchOutput",
    "FileOutput",
    "Input",
    "Metrics",
    "Settings",
    "Ssl",
    "load",
    "loads",
    "parse_duration",
]


class Duration(float):
    """Seconds, written in the file as ``5s``, ``1m``, ``250ms`` or a bare number."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::([^}]*))?\}")


def parse_duration(value: object) -> Duration:
    """``"5s"`` → 5.0; ``"1m"`` → 60.0; ``3`` → 3.0. Raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 5s or 1m, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"a duration must be a finite number, got {value!r}")
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return Duration(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
            if math.isfinite(seconds):
                return Duration(seconds)
    raise ValueError(f"expected a duration such as 5s, 1m or 250ms, got {value!r}")


class _Base(msgspec.Struct, frozen=True, forbid_unknown_fields=False, kw_only=True):
    pass


class Input(_Base, frozen=True):
    """One ``inputs:`` entry: an SQS queue set (``type: sqs``) or a bucket listing
    (``type: s3``, used by ``s3lb import``)."""

    type: Literal["sqs", "s3"]
    queues_url: list[str] = []
    buckets: list[str] = []
    log_format: str = "auto"
    log_format_options: dict[str, Any] = {}
    key_regex_fields: str = ""
    poll_frequency: Duration = Duration(1)
    fields: dict[str, Any] = {}
    fields_under_root: bool = False
    since: str = ""
    to: str = ""
    name: str = ""


#: Bounds of ``checkpoint.map_size``: LMDB needs a few pages; beyond 1 TiB is a typo.
MIN_MAP_SIZE = 64 * 1024
MAX_MAP_SIZE = 1 << 40
#: Most tasks ``worker`` or ``object_workers`` may start (more exhausts memory).
MAX_WORKERS = 1024
_Workers = Annotated[int, msgspec.Meta(ge=1, le=MAX_WORKERS)]
#: Most worker processes ``processes`` may ask for.
MAX_PROCESSES = 64


class CheckpointSettings(_Base, frozen=True):
    """``s3lb.checkpoint``: the LMDB store under ``state_dir/checkpoint``."""

    #: Size of the store's memory map: the most it can hold (the file grows as used),
    #: from :data:`MIN_MAP_SIZE` to :data:`MAX_MAP_SIZE` bytes.
    map_size: Annotated[int, msgspec.Meta(ge=MIN_MAP_SIZE, le=MAX_MAP_SIZE)] = 1 << 30


class Settings(_Base, frozen=True):
    """The ``s3lb:`` (or ``s3logsbeat:``) section."""

    inputs: list[Input] = []
    state_dir: str = "./state"
    shutdown_timeout: Duration = Duration(30)
    #: SQS messages received and not yet deleted, across all queues.
    max_inflight_messages: Annotated[int, msgspec.Meta(ge=1, le=120_000)] = 100  # SQS's limit
    #: Objects read at the same time.
    object_workers: _Workers = 8
    #: Lines longer than this are dead-lettered instead of parsed.
    max_line_bytes: Annotated[int, msgspec.Meta(ge=1)] = 1024 * 1024
    #: SQS long-poll wait (at most 20 s).
    wait_time: Duration = Duration(20)
    #: How often a stats line is logged.
    stats_interval: Duration = Duration(30)
    #: Visibility timeout of received messages; 0 reads the queue's own setting.
    visibility_timeout: Duration = Duration(0)
    #: How long one message may be held in flight (visibility extended) before it is
    #: released to the queue, so its redrive policy still works during a long outage.
    max_hold: Duration = Duration(3600)
    #: How long finished objects are remembered (a repeated notification is a no-op).
    done_retention: Duration = Duration(7 * 86400)
    checkpoint: CheckpointSettings = CheckpointSettings()
    #: Worker processes of ``run`` and ``import``: ``auto`` (one per core this process
    #: may use, see :mod:`s3lb.config.cores`) or 1..:data:`MAX_PROCESSES`; 1 runs the
    #: pipeline in the main process, no supervisor.
    processes: Annotated[int, msgspec.Meta(ge=1, le=MAX_PROCESSES)] | Literal["auto"] = "auto"

    def process_count(self) -> int:
        """How many processes ``processes`` means on this host."""
        if self.processes == "auto":
            return min(usable_cores()[0], MAX_PROCESSES)
        return self.processes


class Backoff(_Base, frozen=True):
    """Retry delays for whole-request failures: exponential from ``init`` to ``max``."""

    init: Duration = Duration(1)
    max: Duration = Duration(60)


class Ssl(_Base, frozen=True):
    """``output.elasticsearch.ssl``: beats' names. Verification is on unless
    ``verification_mode: none``."""

    #: CA certificates to trust: PEM file paths, or PEM text inline. Empty: the
    #: usual public CAs.
    certificate_authorities: list[str] = []
    #: ``full`` (chain and host name; ``strict`` is the same here), ``certificate``
    #: (chain only) or ``none`` (no verification at all: tests only).
    verification_mode: Literal["full", "strict", "certificate", "none"] = "full"
    #: Client certificate and key (PEM files) for clusters that require one.
    certificate: str = ""
    key: str = ""
    key_passphrase: str = ""


class AwsAuth(_Base, frozen=True):
    """``output.elasticsearch.aws_auth``: sign requests with SigV4 for Amazon OpenSearch
    Service (``es``) or OpenSearch Serverless (``aoss``); credentials come from
    botocore's usual chain."""

    #: The domain's region; empty: ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / the profile's.
    region: str = ""
    service: Literal["es", "aoss"] = "es"
    #: A named profile of the shared AWS files; empty: the default chain.
    profile: str = ""


class ElasticsearchOutput(_Base, frozen=True):
    """``output.elasticsearch``: beats names where beats has one."""

    enabled: bool = True
    hosts: list[str] = msgspec.field(default_factory=lambda: ["http://127.0.0.1:9200"])
    protocol: Literal["http", "https"] = "http"
    path: str = ""
    username: str = ""
    password: str = ""
    #: ``id:api_key`` (encoded for the header by s3lb), or the already encoded form.
    api_key: str = ""
    index: str = "s3lb-%{+yyyy.MM.dd}"
    bulk_max_size: Annotated[int, msgspec.Meta(ge=1)] = 1600
    #: Upper bound of one bulk request body (before compression), in bytes.
    bulk_max_bytes: int = 10 * 1024 * 1024
    flush_interval: Duration = Duration(1)
    worker: _Workers = 2
    timeout: Duration = Duration(90)
    backoff: Backoff = Backoff()
    headers: dict[str, str] = {}
    #: gzip level of request bodies, 1 (fast) to 9 (small); 0 sends them uncompressed.
    compression_level: int = 0
    #: Ingest pipeline every document goes through; empty: none.
    pipeline: str = ""
    #: Write to the data stream named by ``index`` (which then has no date part).
    data_stream: bool = False
    #: How ``_id`` is made: ``position`` (object identity and record position) or
    #: ``content`` (SHA-1 of the raw line, as s3logsbeat did).
    document_id: Literal["position", "content"] = "position"
    #: Index for documents the cluster rejects; empty: the dead-letter files.
    dead_letter_index: str = ""
    ssl: Ssl = Ssl()
    aws_auth: AwsAuth | None = None

    def __post_init__(self) -> None:
        # ValueError is reported by load() as a configuration error of this section.
        if not 0 <= self.compression_level <= 9:
            raise ValueError("compression_level must be 0 (off) to 9")
        if self.bulk_max_bytes < 1024:
            raise ValueError("bulk_max_bytes must be at least 1024")
        if self.data_stream and "%{+" in self.index:
            raise ValueError(
                "data_stream needs an index without a date part, e.g. logs-alb-default"
            )
        if self.aws_auth is not None and (self.username or self.api_key):
            raise ValueError("aws_auth signs requests: drop username/password and api_key")
        if self.dead_letter_index and "%{" in self.dead_letter_index:
            raise ValueError("dead_letter_index must be a plain index name")

    def host_urls(self) -> list[str]:
        """Hosts as full base URLs: scheme from ``protocol`` when absent, ``path`` appended."""
        urls = []
        for host in self.hosts:
            url = host if "://" in host else f"{self.protocol}://{host}"
            urls.append(url.rstrip("/") + ("/" + self.path.strip("/") if self.path else ""))
        return urls


class FileOutput(_Base, frozen=True):
    """``output.file``: NDJSON to ``path`` (``-`` is stdout). With ``filename``,
    ``path`` is the directory, as in beats."""

    enabled: bool = True
    path: str = "-"
    filename: str = ""

    def target(self) -> str:
        """The file to write, or ``-`` for stdout."""
        if self.filename:
            return str(Path(self.path) / self.filename)
        return self.path


class Outputs(_Base, frozen=True):
    elasticsearch: ElasticsearchOutput | None = None
    file: FileOutput | None = None


class Aws(_Base, frozen=True):
    """``aws:`` overrides; botocore's usual chain applies otherwise."""

    region: str = ""
    profile: str = ""


class Metrics(_Base, frozen=True):
    """``metrics:``: the Prometheus endpoint of ``s3lb run`` (off unless ``listen`` is set)."""

    #: ``HOST:PORT`` to serve ``/metrics`` on, e.g. ``127.0.0.1:9108``; empty: no endpoint.
    listen: str = ""

    def __post_init__(self) -> None:
        if self.listen:
            from s3lb.metrics import parse_listen  # late: prometheus-client only when on

            try:
                parse_listen(self.listen)
            except ValueError as exc:
                raise ValueError(f"invalid listen address: {exc}") from None


class Config(_Base, frozen=True):
    """The whole file, normalised: ``settings`` is the ``s3lb:``/``s3logsbeat:`` section."""

    settings: Settings
    output: Outputs = Outputs()
    aws: Aws = Aws()
    metrics: Metrics = Metrics()
    root: str = "s3lb"

    @property
    def sink(self) -> ElasticsearchOutput | FileOutput:
        """The one enabled output."""
        out = self.output
        if out.elasticsearch is not None and out.elasticsearch.enabled:
            return out.elasticsearch
        if out.file is not None and out.file.enabled:
            return out.file
        raise ConfigError("no enabled output: set output.elasticsearch or output.file", "output")


# Settings of beats that s3lb accepts silently: they appear in seed configs and have
# no meaning here (libbeat's queue, logging and monitoring).
_BEATS_KEYS = {"queue", "logging", "monitoring", "setup", "name", "tags", "path", "http"}


def load(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> tuple[Config, list[str]]:
    """Read and validate the file at ``path``; return the config and warnings."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the configuration file: {exc.strerror}", str(path)
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"the configuration file is not UTF-8 text: byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start} (line {line}) cannot be "
            "decoded; save the file as UTF-8",
            str(path),
        ) from None
    return loads(text, env)


def loads(text: str, env: Mapping[str, str] | None = None) -> tuple[Config, list[str]]:
    """Validate YAML ``text``; return the config and a list of warnings."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a mapping of keys")
    tree = _expand_env(_nest(raw), os.environ if env is None else env)

    roots = [name for name in ("s3lb", "s3logsbeat") if name in tree]
    if len(roots) > 1:
        raise ConfigError("use either the s3lb: or the s3logsbeat: section, not both")
    root = roots[0] if roots else "s3lb"
    section = tree.pop(root, None) or {}
    if not isinstance(section, dict):
        raise ConfigError("must be a mapping", root)

    warnings: list[str] = []
    document: dict[str, Any] = {"settings": section, "root": root}
    for key, value in tree.items():
        if key in ("output", "aws", "metrics"):
            document[key] = value
        elif key not in _BEATS_KEYS:
            warnings.append(f"unknown key {key!r} ignored")
    out = document.get("output")
    if isinstance(out, dict):
        for name in list(out):
            if name not in ("elasticsearch", "file"):
                warnings.append(f"output {name!r} is not supported by s3lb; ignored")
                out.pop(name)
    warnings += [w.replace("'settings.", f"'{root}.") for w in _unknown_keys(document, Config, "")]

    try:
        config = msgspec.convert(document, Config, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(*_explain(str(exc), root)) from None
    check_config(config)
    return config, warnings


def _nest(value: Any) -> Any:
    """Turn beats' dotted keys (``output.elasticsearch.hosts``) into nested mappings."""
    if isinstance(value, list):
        return [_nest(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        item = _nest(item)
        parts = str(key).split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError("is set both as a value and as a section", str(key))
        last = parts[-1]
        if isinstance(node.get(last), dict) and isinstance(item, dict):
            node[last] = {**node[last], **item}
        else:
            node[last] = item
    return out


def _expand_env(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, dt.date):
        # An unquoted YAML date or time (``since: 2024-01-01``) is meant as text.
        return value.isoformat()
    if isinstance(value, list):
        return [_expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _expand_env(v, env) for k, v in value.items()}
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set (write ${{{name}:default}})")

    expanded = _ENV.sub(substitute, value)
    # A whole-value reference may stand for a number or a list, as in beats.
    if _ENV.fullmatch(value):
        try:
            parsed = yaml.safe_load(expanded)
        except yaml.YAMLError:
            return expanded
        if isinstance(parsed, int | float | bool | list):
            return parsed
    return expanded


def _unknown_keys(value: Any, struct: type, path: str) -> list[str]:
    if not isinstance(value, dict) or not isinstance(struct, type):
        return []
    if not issubclass(struct, msgspec.Struct):
        return []
    known = {f.name: f.type for f in msgspec.structs.fields(struct)}
    found = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key not in known:
            found.append(f"unknown key {where!r} ignored")
            continue
        for target in _struct_types(known[key]):
            if isinstance(item, list):
                for i, element in enumerate(item):
                    found += _unknown_keys(element, target, f"{where}[{i}]")
            else:
                found += _unknown_keys(item, target, where)
    return found


def _struct_types(annotation: Any) -> list[type]:
    args = getattr(annotation, "__args__", None)
    candidates = list(args) if args else [annotation]
    return [c for c in candidates if isinstance(c, type) and issubclass(c, msgspec.Struct)]


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Duration:
        return parse_duration(value)
    raise NotImplementedError


_AT = re.compile(r" - at `\$(.*)`$")
_BOUND = re.compile(r"^Expected `int` ([<>]=) (-?\d+)$")
_WORDS = {">=": "at least", "<=": "at most"}


def _explain(message: str, root: str) -> tuple[str, str]:
    """msgspec's ``Expected int - at `$.settings.x``` → (reason, ``s3lb.x``)."""
    match = _AT.search(message)
    where = match.group(1).lstrip(".") if match else ""
    reason = _BOUND.sub(
        lambda m: f"must be {_WORDS[m.group(1)]} {m.group(2)}", _AT.sub("", message)
    )
    if where.startswith("settings"):
        where = root + where[len("settings") :]
    return reason, where
