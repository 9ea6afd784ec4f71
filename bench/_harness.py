"""What every bench script shares: services on 127.0.0.1, synthetic ALB logs, a
daemon runner, process sampling and the printed report.

Not a script. Each ``bench/*.py`` imports it (``bench/`` is put on ``sys.path`` by the
script itself) and stays runnable from a fresh clone with the project's venv:

- moto (S3 + SQS: ``ThreadedMotoServer``, port 0) runs in a process of its own;
- the null bulk endpoint (:mod:`tests.fakes.null_sink`) runs in its own process;
- the real OpenSearch node comes from ``tests/opensearch_node.py`` (imported by path:
  ``tests`` is not a package on the path of a bench script);
- ``s3lb run`` is a subprocess with a generated configuration, its Prometheus endpoint
  on a free port, and its log in the run's temporary directory: the configuration
  builder and the runner are the tests' own (``tests/support``, importable once the
  repository is on ``sys.path``, which this module sees to).

Nothing here needs ``shared/``: ALB lines are generated (:func:`alb_lines`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Self

REPO = Path(__file__).resolve().parents[1]
# The s3lb of this checkout, here and in every subprocess (ahead of an editable install
# of another checkout).
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
)
from tests.support import configs  # noqa: E402  (the path above first)
from tests.support.daemon import S3lbProcess  # noqa: E402
from tests.support.helpers import free_port as free_port  # noqa: E402
from tests.support.helpers import gz as gz  # noqa: E402

PYTHON = sys.executable
CORES = os.cpu_count() or 1
CLK_TCK = os.sysconf("SC_CLK_TCK")

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def load_by_path(name: str, path: Path) -> ModuleType:
    """Import a module from a file (``tests/opensearch_node.py``, the fake cluster)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- synthetic ALB logs ----------------------------------------------------------------

_AGENTS = [
    "curl/8.5.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "ELB-HealthChecker/2.0",
]
_PATHS = [
    "/",
    "/api/v1/orders",
    "/api/v1/users/{n}",
    "/static/app.{n}.js",
    "/health",
    "/search?q=item{n}&page=2",
    "/img/{n}.png",
    "/checkout/{n}/confirm",
]
_STATUS = [200] * 30 + [201, 204, 301, 302, 304, 400, 401, 403, 404, 404, 500, 502, 503]
_TG = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-{n}/73e2d6bc24d8a067"
_CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"


def alb_lines(count: int, seed: int, day: str = "2024-05-01") -> list[bytes]:
    """``count`` distinct ALB lines of today's 30-field layout, all on ``day``.

    Like one object of a busy load balancer: five minutes of requests in time order
    (many lines share a second), varied enough that gzip compresses them about as
    much as real logs (~6:1) and every field path of the parser is taken; each one
    parses (``s3lb parse -f alb``)."""
    rnd = random.Random(seed)
    out = []
    start = (seed * 300) % (86400 - 300)
    for i in range(count):
        sec = start + i * 300 // count
        hms = f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
        t = f"{day}T{hms}.{rnd.randrange(10**6):06d}Z"
        scheme = rnd.choice(("http", "https", "https", "h2"))
        status = rnd.choice(_STATUS)
        target = f"10.0.{rnd.randrange(4)}.{rnd.randrange(1, 255)}:{rnd.choice((80, 8080, 9000))}"
        path = rnd.choice(_PATHS).format(n=rnd.randrange(100000))
        host = f"www{rnd.randrange(3)}.example.com"
        port = 80 if scheme == "http" else 443
        tls = scheme != "http"
        trace = f"Root=1-{rnd.getrandbits(32):08x}-{rnd.getrandbits(96):024x}"
        fields = [
            scheme,
            t,
            "app/my-loadbalancer/50dc6c495c0c9188",
            f"{rnd.randrange(1, 223)}.{rnd.randrange(256)}.{rnd.randrange(256)}"
            f".{rnd.randrange(1, 255)}:{rnd.randrange(1024, 65535)}",
            target,
            f"{rnd.random() / 100:.3f}",
            f"{rnd.random() / 5:.3f}",
            f"{rnd.random() / 100:.3f}",
            str(status),
            str(status),
            str(rnd.randrange(100, 2000)),
            str(rnd.randrange(200, 200000)),
            f'"{rnd.choice(("GET", "GET", "GET", "POST", "PUT"))} '
            f"{scheme if scheme != 'h2' else 'https'}://{host}:{port}{path} "
            f'{"HTTP/2.0" if scheme == "h2" else "HTTP/1.1"}"',
            f'"{rnd.choice(_AGENTS)}"',
            "ECDHE-RSA-AES128-GCM-SHA256" if tls else "-",
            "TLSv1.2" if tls else "-",
            _TG.format(n=rnd.randrange(4)),
            f'"{trace}"',
            f'"{host}"' if tls else '"-"',
            f'"{_CERT}"' if tls else '"-"',
            str(rnd.randrange(0, 50)),
            t,
            '"forward"',
            '"-"',
            '"-"',
            f'"{target}"',
            f'"{status}"',
            '"-"',
            '"-"',
            f"TID_{rnd.getrandbits(128):032x}",
        ]
        out.append(" ".join(fields).encode())
    return out


def alb_text(count: int, seed: int) -> bytes:
    return b"\n".join(alb_lines(count, seed)) + b"\n"


def alb_stream(total_bytes: int, block_lines: int = 20000, seed: int = 1) -> Iterator[bytes]:
    """Plain ALB text of about ``total_bytes`` in blocks, without holding it all:
    one block of distinct lines is generated and repeated with its timestamps'
    seconds field rotated, so that neighbouring blocks differ (gzip's 32 KiB window
    sees no repeats) while generation stays cheap."""
    block = alb_lines(block_lines, seed)
    sent = 0
    n = 0
    while sent < total_bytes:
        # Different trace ids per repetition: rewrite the last 8 hex digits of each.
        tag = f"{n:08x}".encode()
        data = b"\n".join(line[:-8] + tag for line in block) + b"\n"
        if sent + len(data) > total_bytes:
            cut = data.rfind(b"\n", 0, total_bytes - sent) + 1
            data = data[:cut] or data[: data.find(b"\n") + 1]
        sent += len(data)
        n += 1
        yield data


def gzip_stream(blocks: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    """Gzip ``blocks`` as one member, streaming."""
    z = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for block in blocks:
        out = z.compress(block)
        if out:
            yield out
    yield z.flush()


# -- moto and AWS access -----------------------------------------------------------------


_MOTO = """
import logging, sys, threading
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
print(f"http://{host}:{port}", flush=True)
sys.stdin.read()  # until the harness closes our stdin (or exits)
server.stop()
"""


class Aws:
    """moto (S3 + SQS, ``ThreadedMotoServer`` on 127.0.0.1, port 0) in a process of its
    own, so that neither its GIL nor the harness's stands in the daemon's way; and
    botocore clients to it."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [PYTHON, "-c", _MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise RuntimeError("moto did not start")
        import botocore.config
        import botocore.session

        session = botocore.session.get_session()
        kwargs: dict[str, Any] = {
            "region_name": "us-east-1",
            "endpoint_url": self.url,
            "aws_access_key_id": "bench",
            "aws_secret_access_key": "bench",
            "config": botocore.config.Config(max_pool_connections=20),
        }
        self.s3 = session.create_client("s3", **kwargs)
        self.sqs = session.create_client("sqs", **kwargs)

    @property
    def pid(self) -> int:
        return self._process.pid

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> Aws:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def env(self) -> dict[str, str]:
        """The daemon's environment: credentials and endpoint of this moto."""
        env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN")}
        return {**env, **AWS_ENV, "AWS_ENDPOINT_URL": self.url}

    def queue(self, **attributes: Any) -> str:
        name = f"bench-{uuid.uuid4().hex[:10]}"
        attrs = {k: str(v) for k, v in attributes.items()}
        return self.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]

    def bucket(self) -> str:
        name = f"bench-{uuid.uuid4().hex[:10]}"
        self.s3.create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, body: bytes) -> str:
        return self.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')

    def put_stream(self, bucket: str, key: str, parts: Iterable[bytes], part_size: int) -> str:
        """Multipart upload of the concatenation of ``parts`` (never all in memory here)."""
        upload = self.s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        done, buf, number = [], bytearray(), 1

        def flush(data: bytes) -> None:
            nonlocal number
            etag = self.s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data
            )["ETag"]
            done.append({"ETag": etag, "PartNumber": number})
            number += 1

        for piece in parts:
            buf += piece
            while len(buf) >= part_size:
                flush(bytes(buf[:part_size]))
                del buf[:part_size]
        if buf or not done:
            flush(bytes(buf))
        result = self.s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
        )
        return result["ETag"].strip('"')

    def notify(
        self, queue_url: str, bucket: str, objects: list[tuple[str, str, int]], per_message: int = 1
    ) -> None:
        """Send S3 ObjectCreated notifications (AWS's shape) for ``(key, etag, size)``,
        ``per_message`` records per message, ten messages per SendMessageBatch."""
        bodies = notification_bodies(bucket, objects, per_message)
        for i in range(0, len(bodies), 10):
            entries = [{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])]
            self.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)

    def counts(self, queue_url: str) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )


def notification_bodies(
    bucket: str, objects: list[tuple[str, str, int]], per_message: int = 1
) -> list[str]:
    """SQS bodies of S3 ObjectCreated notifications for ``(key, etag, size)``."""
    bodies = []
    for i in range(0, len(objects), per_message):
        records = [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2024-05-01T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": key, "size": size, "eTag": etag},
                },
            }
            for key, etag, size in objects[i : i + per_message]
        ]
        bodies.append(json.dumps({"Records": records}))
    return bodies


class StandIn:
    """A stand-in server of ``tests/fakes`` (``python -m MODULE ARGS``) in a process of its
    own, which prints its URL first; ``GET /_bench/stats`` gives its counters."""

    def __init__(self, module: str, *args: str) -> None:
        cmd = [PYTHON, "-m", module, *args]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise RuntimeError(f"{module} did not start: {self.url!r}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/_bench/stats", timeout=10) as r:
            return json.loads(r.read())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FastAws(StandIn):
    """tests/fakes/fast_aws.py as a subprocess: S3 + SQS answered in microseconds after
    ``latency_ms`` (a modelled round trip to AWS). Same interface as :class:`Aws`
    for what the benchmarks use."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        super().__init__("tests.fakes.fast_aws", "--latency-ms", str(latency_ms))

    env = Aws.env

    def _post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method="POST" if path == "/" else "PUT",
            headers=headers or {},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read() or b"{}")

    def _sqs(self, action: str, payload: dict[str, Any]) -> Any:
        headers = {
            "X-Amz-Target": f"AmazonSQS.{action}",
            "Content-Type": "application/x-amz-json-1.0",
        }
        return self._post("/", json.dumps(payload).encode(), headers)

    def queue(self, **attributes: Any) -> str:
        return f"{self.url}/123456789012/bench-{uuid.uuid4().hex[:10]}"

    def bucket(self) -> str:
        return f"bench-{uuid.uuid4().hex[:10]}"

    def put(self, bucket: str, key: str, body: bytes) -> str:
        return self._post(f"/_bench/object/{bucket}/{key}", body)["ETag"]

    def notify(
        self, queue_url: str, bucket: str, objects: list[tuple[str, str, int]], per_message: int = 1
    ) -> None:
        bodies = notification_bodies(bucket, objects, per_message)
        for i in range(0, len(bodies), 10):
            entries = [{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])]
            self._sqs("SendMessageBatch", {"QueueUrl": queue_url, "Entries": entries})

    def counts(self, queue_url: str) -> tuple[int, int]:
        """Messages visible and in flight."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attrs = self._sqs("GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": names})
        return int(attrs["Attributes"][names[0]]), int(attrs["Attributes"][names[1]])


# -- the null bulk endpoint (tests/fakes/null_sink.py in its own process) ----------------


class NullSink(StandIn):
    """``tests/fakes/null_sink.py`` as a subprocess: acknowledges every bulk item, answers
    409 to an ``_id`` it has seen (``track_ids``), optionally after ``latency`` seconds."""

    def __init__(self, *, track_ids: bool = False, latency: float = 0.0) -> None:
        flags = ["--track-ids"] if track_ids else []
        super().__init__("tests.fakes.null_sink", "--latency", str(latency), *flags)

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/_bench/reset", method="POST", data=b"")
        urllib.request.urlopen(request, timeout=10).close()


# -- the real OpenSearch node ---------------------------------------------------------------


@contextlib.contextmanager
def opensearch(tmp: Path, heap: str = "1g") -> Iterator[tuple[str, int | None]]:
    """A real OpenSearch 2.19 node (tests/opensearch_node.py): ``(url, jvm pid)``."""
    node = load_by_path("s3lb_bench_opensearch_node", REPO / "tests" / "opensearch_node.py")
    reason = node.skip_reason(REPO)
    if reason:
        raise SystemExit(f"cannot run the OpenSearch node: {reason}")
    before = set(child_pids(os.getpid()))
    with node.running_node(tmp, repo_root=REPO, heap=heap) as url:
        new = [p for p in child_pids(os.getpid()) if p not in before]
        java = next((p for p in new if b"java" in _cmdline(p)), None)
        yield url, java


def es_request(url: str, method: str = "GET", body: Any = None, timeout: float = 60) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, method=method, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


# -- processes --------------------------------------------------------------------------------


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's)."""
    out = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(p) for p in (task / "children").read_text().split()]
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (worker processes count as the daemon's)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += child_pids(p)
    return out


def status_kib(pid: int, field: str) -> int:
    """``VmRSS``, ``VmHWM``… of ``pid`` in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` (its threads included; reaped children included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the ")": state is fields[0]; utime, stime, cutime, cstime are 11..14.
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in tree(pid))


class RssSampler:
    """Samples the summed VmRSS of a process tree every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            kib = sum(status_kib(p, "VmRSS") for p in tree(self.pid))
            if kib:
                self.samples.append((time.monotonic() - t0, kib))
                self.peak_kib = max(self.peak_kib, kib)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- s3lb run as a subprocess ------------------------------------------------------------------


def s3lb_config(
    queue_url: str,
    es_url: str,
    *,
    state_dir: Path,
    metrics_port: int,
    index: str = "bench-s3lb-%{+yyyy.MM.dd}",
    settings: dict[str, Any] | None = None,
    output: dict[str, Any] | None = None,
) -> str:
    """The benches' configuration (:func:`tests.support.configs.s3lb_config`) for one
    queue of ALB logs."""
    return configs.s3lb_config(
        state_dir=state_dir,
        queues=[queue_url],
        log_format="alb",
        es_url=es_url,
        es={"index": index, "flush_interval": None, "backoff.max": "2s", **(output or {})},
        metrics=f"127.0.0.1:{metrics_port}",
        **{"shutdown_timeout": "30s", "stats_interval": "5s", **(settings or {})},
    )


class Daemon(S3lbProcess):
    """``s3lb run`` (or ``python -m pyinstrument … -m s3lb run``), started at once, with
    its Prometheus counters; ``env`` is the whole environment."""

    def __init__(
        self,
        config: str,
        workdir: Path,
        env: dict[str, str],
        *,
        profile: Path | None = None,
        name: str = "s3lb",
    ) -> None:
        prefix: list[str] = []
        if profile is not None:  # text, or html when the name ends in .html
            renderer = "html" if profile.suffix == ".html" else "text"
            prefix = ["-m", "pyinstrument", "-r", renderer, "-o", str(profile)]
        super().__init__(workdir, config, env, name=name, prefix=prefix, inherit_env=False)
        self.metrics_url = "http://" + json.loads(config)["metrics"]["listen"] + "/metrics"
        self.start(wait=True, timeout=60)

    def metrics(self) -> dict[str, float]:
        """The Prometheus counters, by name without labels (``s3lb_events_indexed_total``)."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name.split("{", 1)[0]] = float(value)
        return out

    def counter(self, name: str) -> float:
        return self.metrics().get(f"s3lb_{name}_total", 0.0)

    def wait_counter(self, name: str, target: float, timeout: float, poll: float = 0.05) -> float:
        """Wait until counter ``name`` reaches ``target``; return the wall time it did."""
        deadline = time.monotonic() + timeout
        while True:
            if self.counter(name) >= target:
                return time.perf_counter()
            if self.process is None or self.process.poll() is not None:
                code = self.process and self.process.returncode
                raise RuntimeError(f"s3lb exited ({code}):\n{self.log[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"timed out waiting for {name} >= {target} (at {self.counter(name)})"
                )
            time.sleep(poll)

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM; the exit status (SIGKILL's after ``timeout``)."""
        try:
            return super().stop(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.wait(10)


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary directory, removed at the end unless ``keep``."""
    if keep:
        path = Path(tempfile.mkdtemp(prefix=f"s3lb-bench-{prefix}-"))
        print(f"(keeping {path})")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"s3lb-bench-{prefix}-") as tmp:
        yield Path(tmp)


def doc_ids(prefix: str, n: int) -> list[str]:
    """``n`` ids shaped like s3lb's (32 hex digits of a blake2b)."""
    return [hashlib.blake2b(f"{prefix}:{i}".encode(), digest_size=16).hexdigest() for i in range(n)]


# -- report --------------------------------------------------------------------------------


def header(title: str, args: Any = None) -> None:
    import platform

    print(f"== {title}")
    print(
        f"machine: {CORES} cores, {_mem_gib():.0f} GiB, python {platform.python_version()}, "
        f"{platform.machine()}" + (f"; options: {vars(args)}" if args is not None else "")
    )


def _mem_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print ``rows`` as a fixed-width table."""
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(columns, widths, strict=True))
        )
    )
    for row in cells:
        print(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(name: str, value: float, target: str, met: bool) -> None:
    """The line each script ends with: ``RATIO name: x.xx (target …)``."""
    print(f"RATIO {name}: {value:.2f} (target {target}: {'met' if met else 'NOT met'})")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result
